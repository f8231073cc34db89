package servicetrade_test

import (
	"bytes"
	"encoding/json"
	"math"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/fieldstream/fieldstream/pkg/webhook"
	"github.com/fieldstream/fieldstream/services/simulator/servicetrade"
)

// domainSample is the ServiceTrade delivery from domain.md.
const domainSample = `{"messageId":"5b0f3c1e-8a2d-4a51-9a7e-2f0d6c1b9e44","timestamp":"1767106200",
 "data":[{"action":"updated","timestamp":1767106195,"userId":2274033731790001,
   "entity":{"type":"job","id":2274033731792769,"uri":"https://api.servicetrade.com/api/job/2274033731792769"},
   "changeset":[{"field":"status","oldValue":"scheduled","newValue":"completed"}]}]}`

func TestDeliveryBodyIsServiceTradeWireFormat(t *testing.T) {
	d := servicetrade.Delivery{
		MessageID: "5b0f3c1e-8a2d-4a51-9a7e-2f0d6c1b9e44",
		Timestamp: 1767106200,
		Items: []servicetrade.Change{{
			Action:    servicetrade.ActionUpdated,
			Timestamp: 1767106195,
			UserID:    2274033731790001,
			Entity:    servicetrade.Ref(servicetrade.TypeJob, 2274033731792769),
			Changeset: []servicetrade.FieldChange{{Field: "status", OldValue: "scheduled", NewValue: "completed"}},
		}},
		Seq: 9, // not on the wire
	}
	got, err := d.Body()
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	if err := json.Compact(&want, []byte(domainSample)); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Errorf("Body() =\n%s\nwant\n%s", got, want.Bytes())
	}
}

func TestDeliveryBodyShapes(t *testing.T) {
	tests := []struct {
		name string
		d    servicetrade.Delivery
		want string
	}{
		{
			name: "empty batch",
			d:    servicetrade.Delivery{MessageID: "m", Timestamp: 1},
			want: `{"messageId":"m","timestamp":"1","data":[]}`,
		},
		{
			name: "created has no changeset",
			d: servicetrade.Delivery{MessageID: "m", Timestamp: 2, Items: []servicetrade.Change{{
				Action: "created", Timestamp: 2, UserID: 3, Entity: servicetrade.Ref("clock", 4),
			}}},
			want: `{"messageId":"m","timestamp":"2","data":[{"action":"created","timestamp":2,"userId":3,"entity":{"type":"clock","id":4,"uri":"https://api.servicetrade.com/api/clock/4"}}]}`,
		},
		{
			name: "null and integer values",
			d: servicetrade.Delivery{MessageID: "m", Timestamp: 2, Items: []servicetrade.Change{{
				Action: "updated", Timestamp: 2, UserID: 3, Entity: servicetrade.Ref("clock", 4),
				Changeset: []servicetrade.FieldChange{{Field: "clockOut", OldValue: nil, NewValue: int64(1767106195)}},
			}}},
			want: `{"messageId":"m","timestamp":"2","data":[{"action":"updated","timestamp":2,"userId":3,"entity":{"type":"clock","id":4,"uri":"https://api.servicetrade.com/api/clock/4"},"changeset":[{"field":"clockOut","oldValue":null,"newValue":1767106195}]}]}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.d.Body()
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("Body() = %s\nwant     %s", got, tt.want)
			}
		})
	}
}

// TestDeliveryBodyKeepsIDsExact: ids above 2^53, where float64 loses the last digits, come
// through exactly, both to a json.Decoder with UseNumber and to the gateway's parser.
func TestDeliveryBodyKeepsIDsExact(t *testing.T) {
	for _, id := range []int64{1<<53 + 1, 9007199254740993, 1<<62 + 7, math.MaxInt64} {
		t.Run(strconv.FormatInt(id, 10), func(t *testing.T) {
			d := servicetrade.NewDelivery([]servicetrade.Change{{
				Action: "created", Timestamp: 1767106195, UserID: id - 1, Entity: servicetrade.Ref("asset", id),
			}}, time.Unix(1767106200, 0))
			body, err := d.Body()
			if err != nil {
				t.Fatal(err)
			}

			var p struct {
				Data []struct {
					UserID json.Number `json:"userId"`
					Entity struct {
						ID json.Number `json:"id"`
					} `json:"entity"`
				} `json:"data"`
			}
			dec := json.NewDecoder(bytes.NewReader(body))
			dec.UseNumber()
			if err := dec.Decode(&p); err != nil {
				t.Fatal(err)
			}
			if got, want := p.Data[0].Entity.ID.String(), strconv.FormatInt(id, 10); got != want {
				t.Errorf("entity.id = %s, want %s", got, want)
			}
			if got, want := p.Data[0].UserID.String(), strconv.FormatInt(id-1, 10); got != want {
				t.Errorf("userId = %s, want %s", got, want)
			}

			parsed, err := webhook.ParseServiceTrade(body)
			if err != nil {
				t.Fatal(err)
			}
			if got := parsed.Items[0].EntityID; got != id {
				t.Errorf("ParseServiceTrade entity id = %d, want %d", got, id)
			}
		})
	}
}

// TestAccountChangesParse: whatever an account reports, with ids above 2^53, the gateway's
// parser accepts with the same ids.
func TestAccountChangesParse(t *testing.T) {
	const base = 1<<53 + 1
	a := newAccount(t, servicetrade.AccountConfig{Seed: 11, IDBase: base})
	for i := range 100 {
		now := t0.Add(time.Duration(i) * time.Minute)
		d := servicetrade.NewDelivery(a.NextChanges(1+i%5, now), now)
		body, err := d.Body()
		if err != nil {
			t.Fatal(err)
		}
		got, err := webhook.ParseServiceTrade(body)
		if err != nil {
			t.Fatalf("ParseServiceTrade(%s): %v", body, err)
		}
		if got.MessageID != d.MessageID || len(got.Items) != len(d.Items) {
			t.Fatalf("parsed %+v from %s", got, body)
		}
		for j, it := range got.Items {
			want := d.Items[j]
			if it.EntityID != want.Entity.ID || it.EntityID < base || it.SourceEntity != want.Entity.Type || it.Time.Unix() != want.Timestamp {
				t.Errorf("item %d parsed as %+v, sent %+v", j, it, want)
			}
		}
	}
}

func TestNewDeliveryMessageIDs(t *testing.T) {
	uuidV4 := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	seen := map[string]bool{}
	for range 1000 {
		d := servicetrade.NewDelivery(nil, t0)
		if !uuidV4.MatchString(d.MessageID) {
			t.Fatalf("message id %q is not a UUID v4", d.MessageID)
		}
		if seen[d.MessageID] {
			t.Fatalf("message id %q repeated", d.MessageID)
		}
		seen[d.MessageID] = true
		if d.Timestamp != t0.Unix() {
			t.Fatalf("timestamp %d, want %d", d.Timestamp, t0.Unix())
		}
	}
}
