package poller

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fieldstream/fieldstream/pkg/event"
)

func TestNewMessage(t *testing.T) {
	received := time.Unix(1767100600, 0)
	tests := []struct {
		name        string
		entity      string
		e           polled
		wantSubject string
		wantID      string
	}{
		{
			name:        "never updated since created",
			entity:      event.EntityWorkOrder,
			e:           polled{id: 2274033731792769, created: 1767100000, updated: 1767100000, data: []byte(`{"id":2274033731792769}`)},
			wantSubject: "events.acme.work_order.2274033731792769.created",
			wantID:      "pl:acme:work_order:2274033731792769:1767100000",
		},
		{
			name:        "updated",
			entity:      event.EntityTimeEntry,
			e:           polled{id: 17, created: 1767100000, updated: 1767100005, data: []byte(`{"id":17}`)},
			wantSubject: "events.acme.time_entry.17.updated",
			wantID:      "pl:acme:time_entry:17:1767100005",
		},
		{
			name:        "id above 2^53 stays exact",
			entity:      event.EntityAsset,
			e:           polled{id: 1<<53 + 1, created: 1, updated: 2, data: []byte(`{"id":9007199254740993}`)},
			wantSubject: "events.acme.asset.9007199254740993.updated",
			wantID:      "pl:acme:asset:9007199254740993:2",
		},
		{
			name:        "largest int64 id",
			entity:      event.EntityLocation,
			e:           polled{id: math.MaxInt64, created: 3, updated: 3, data: []byte(`{"id":9223372036854775807}`)},
			wantSubject: "events.acme.location.9223372036854775807.created",
			wantID:      "pl:acme:location:9223372036854775807:3",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := newMessage("acme", tt.entity, tt.e, received)
			if err != nil {
				t.Fatal(err)
			}
			if m.Subject != tt.wantSubject || m.Header.Get(jetstream.MsgIDHeader) != tt.wantID ||
				m.Header.Get(event.HeaderOrigin) != event.OriginPoll || m.Header.Get("Content-Type") != event.ContentType {
				t.Fatalf("subject %s, headers %v", m.Subject, m.Header)
			}
			var ce event.CloudEvent
			if err := json.Unmarshal(m.Data, &ce); err != nil {
				t.Fatal(err)
			}
			if ce.ID != tt.wantID || !ce.Time.Equal(time.Unix(tt.e.updated, 0)) || !ce.ReceivedTime.Equal(received) ||
				string(ce.Data) != string(tt.e.data) || ce.Source != "servicetrade-poll/acme" || ce.Subject != tt.entity+"/"+ce.EntityID ||
				!strings.HasSuffix(tt.wantSubject, "."+ce.EntityID+"."+ce.Action) {
				t.Fatalf("envelope %+v", ce)
			}
		})
	}
}
