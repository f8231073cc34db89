package event_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/fieldstream/fieldstream/pkg/event"
)

func TestAppendJSONMatchesMarshal(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC)
	tests := []struct {
		name string
		ce   event.CloudEvent
	}{
		{name: "plain", ce: event.New(event.SourceServiceTrade, "demo", "work_order", "9223372036854775807", "completed", "st:demo:work_order:9223372036854775807:updated:1", at, at, json.RawMessage(`{"id":9223372036854775807}`))},
		{name: "delivery id needing escapes", ce: func() event.CloudEvent {
			ce := event.New(event.SourceStandard, "demo", "asset", "a_1", "updated", "sw:demo:\"<x>\"\t\u00e9", at, at, json.RawMessage(`{"id":"a_1","n":"\u00e9"}`))
			ce.DeliveryID = "\"<x>\"\t\u00e9\\"
			return ce
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want, err := json.Marshal(tt.ce)
			if err != nil {
				t.Fatal(err)
			}
			got := tt.ce.AppendJSON(nil)
			if !bytes.Equal(got, want) {
				t.Fatalf("AppendJSON:\n%s\njson.Marshal:\n%s", got, want)
			}
		})
	}
}

func ExampleCloudEvent_AppendJSON() {
	at := time.Unix(1767106195, 0)
	ce := event.New(event.SourceServiceTrade, "demo", "work_order", "2274033731792769", "completed",
		"st:demo:work_order:2274033731792769:updated:1767106195", at, at, json.RawMessage(`{"action":"updated"}`))
	subj, _ := event.Subject(ce.Tenant, ce.Entity, ce.EntityID, ce.Action)
	fmt.Println(subj)
	fmt.Println(string(ce.AppendJSON(nil)))
	// Output:
	// events.demo.work_order.2274033731792769.completed
	// {"specversion":"1.0","id":"st:demo:work_order:2274033731792769:updated:1767106195","source":"servicetrade/demo","type":"dev.fieldstream.work_order.completed","subject":"work_order/2274033731792769","time":"2025-12-30T14:49:55Z","datacontenttype":"application/json","data":{"action":"updated"},"tenant":"demo","entity":"work_order","entityid":"2274033731792769","action":"completed","receivedtime":"2025-12-30T14:49:55Z"}
}

func TestMessage(t *testing.T) {
	ce := event.New(event.SourceServiceTrade, "acme", "job", "42", "updated", "st:acme:job:42:updated:1", time.Unix(1767106195, 0), time.Unix(1767106200, 0), []byte(`{"id":42}`))
	tests := []struct {
		name    string
		origin  string
		wantErr error
	}{
		{name: "webhook"},
		{name: "polled", origin: event.OriginPoll},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := event.NewMessage(&ce, tt.origin)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			msg := m.NATS()
			if msg.Subject != "events.acme.job.42.updated" || msg.Header.Get("Nats-Msg-Id") != ce.ID || msg.Header.Get("Content-Type") != event.ContentType {
				t.Fatalf("message %s %v", msg.Subject, msg.Header)
			}
			if got := event.OriginOf(msg.Header); got != tt.origin {
				t.Errorf("origin %q, want %q", got, tt.origin)
			}
			var back event.CloudEvent
			if err := json.Unmarshal(msg.Data, &back); err != nil || back.ID != ce.ID {
				t.Fatalf("data %s: %v", msg.Data, err)
			}
			// NATS counts a message's headers against max_payload; Size must not undercount.
			wire := len("NATS/1.0\r\n\r\n") + len(msg.Data)
			for k, vs := range msg.Header {
				for _, v := range vs {
					wire += len(k) + len(": \r\n") + len(v)
				}
			}
			if m.Size() < wire {
				t.Errorf("Size %d, the message's wire form is %d bytes", m.Size(), wire)
			}
		})
	}
	bad := ce
	bad.EntityID = "4.2"
	if _, err := event.NewMessage(&bad, ""); !errors.Is(err, event.ErrInvalidSubjectToken) {
		t.Errorf("entity id with a dot: err = %v, want ErrInvalidSubjectToken", err)
	}
}
