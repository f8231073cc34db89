package webhook_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/fieldstream/fieldstream/pkg/webhook"
)

// domainSample is the ServiceTrade delivery from domain.md.
const domainSample = `{"messageId":"5b0f3c1e-8a2d-4a51-9a7e-2f0d6c1b9e44","timestamp":"1767106200",
 "data":[{"action":"updated","timestamp":1767106195,"userId":2274033731790001,
   "entity":{"type":"job","id":2274033731792769,"uri":"https://api.servicetrade.com/api/job/2274033731792769"},
   "changeset":[{"field":"status","oldValue":"scheduled","newValue":"completed"}]}]}`

func TestParseServiceTrade(t *testing.T) {
	d, err := webhook.ParseServiceTrade([]byte(domainSample))
	if err != nil {
		t.Fatal(err)
	}
	if d.MessageID != "5b0f3c1e-8a2d-4a51-9a7e-2f0d6c1b9e44" || len(d.Items) != 1 {
		t.Fatalf("got %+v", d)
	}
	it := d.Items[0]
	if it.Entity != "work_order" || it.Action != "completed" || it.EntityID != 2274033731792769 || it.Time.Unix() != 1767106195 {
		t.Errorf("item = %+v", it)
	}
	if got, want := it.DedupID("demo"), "st:demo:work_order:2274033731792769:completed:1767106195:bae11ceb7284"; got != want {
		t.Errorf("DedupID = %q, want %q", got, want)
	}
}

func TestParseServiceTradeItems(t *testing.T) {
	tests := []struct {
		name       string
		body       string
		wantN      int
		wantID     int64
		wantEntity string
		wantAction string
		wantErr    error
	}{
		{name: "id above 2^53 exact", body: `{"messageId":"m","data":[{"action":"created","timestamp":1,"entity":{"type":"asset","id":9007199254740993}}]}`, wantN: 1, wantID: 9007199254740993, wantEntity: "asset", wantAction: "created"},
		{name: "quoted id", body: `{"messageId":"m","data":[{"action":"created","timestamp":"1","entity":{"type":"clock","id":"2274033731792769"}}]}`, wantN: 1, wantID: 2274033731792769, wantEntity: "time_entry", wantAction: "created"},
		{name: "unknown type kept", body: `{"messageId":"m","data":[{"action":"deleted","timestamp":1,"entity":{"type":"company","id":3}}]}`, wantN: 1, wantID: 3, wantEntity: "company", wantAction: "deleted"},
		{name: "empty batch", body: `{"messageId":"m","data":[]}`, wantN: 0},
		{name: "float id", body: `{"messageId":"m","data":[{"action":"created","timestamp":1,"entity":{"type":"job","id":2.274033731792769e15}}]}`, wantErr: webhook.ErrMalformed},
		{name: "id overflow", body: `{"messageId":"m","data":[{"action":"created","timestamp":1,"entity":{"type":"job","id":99999999999999999999}}]}`, wantErr: webhook.ErrMalformed},
		{name: "no message id", body: `{"data":[]}`, wantErr: webhook.ErrMalformed},
		{name: "no entity type", body: `{"messageId":"m","data":[{"action":"created","timestamp":1,"entity":{"id":1}}]}`, wantErr: webhook.ErrMalformed},
		{name: "no action", body: `{"messageId":"m","data":[{"timestamp":1,"entity":{"type":"job","id":1}}]}`, wantErr: webhook.ErrMalformed},
		{name: "no timestamp", body: `{"messageId":"m","data":[{"action":"created","entity":{"type":"job","id":1}}]}`, wantErr: webhook.ErrMalformed},
		{name: "data not a list", body: `{"messageId":"m","data":{}}`, wantErr: webhook.ErrMalformed},
		{name: "truncated", body: `{"messageId":"m","data":[`, wantErr: webhook.ErrMalformed},
		{name: "messageId of 256 bytes", body: `{"messageId":"` + strings.Repeat("m", 256) + `","data":[]}`, wantN: 0},
		{name: "messageId over 256 bytes", body: `{"messageId":"` + strings.Repeat("m", 257) + `","data":[]}`, wantErr: webhook.ErrMalformed},
		{name: "two entity ids", body: `{"messageId":"m","data":[{"action":"created","timestamp":1,"entity":{"type":"job","id":1,"id":2}}]}`, wantErr: webhook.ErrMalformed},
		{name: "two actions", body: `{"messageId":"m","data":[{"action":"created","action":"deleted","timestamp":1,"entity":{"type":"job","id":1}}]}`, wantErr: webhook.ErrMalformed},
		{name: "action and Action", body: `{"messageId":"m","data":[{"action":"created","Action":"deleted","timestamp":1,"entity":{"type":"job","id":1}}]}`, wantErr: webhook.ErrMalformed},
		{name: "two entities", body: `{"messageId":"m","data":[{"action":"created","timestamp":1,"entity":{"type":"job","id":1},"entity":{"type":"asset","id":1}}]}`, wantErr: webhook.ErrMalformed},
		{name: "two messageIds", body: `{"messageId":"m","messageId":"n","data":[]}`, wantErr: webhook.ErrMalformed},
		{name: "two statuses in a changeset entry", body: `{"messageId":"m","data":[{"action":"updated","timestamp":1,"entity":{"type":"job","id":1},"changeset":[{"field":"status","newValue":"completed","newValue":"canceled"}]}]}`, wantErr: webhook.ErrMalformed},
		{name: "id -0", body: `{"messageId":"m","data":[{"action":"created","timestamp":1,"entity":{"type":"job","id":-0}}]}`, wantErr: webhook.ErrMalformed},
		{name: "id 1e400", body: `{"messageId":"m","data":[{"action":"created","timestamp":1,"entity":{"type":"job","id":1e400}}]}`, wantErr: webhook.ErrMalformed},
		{name: "id 1.0", body: `{"messageId":"m","data":[{"action":"created","timestamp":1,"entity":{"type":"job","id":1.0}}]}`, wantErr: webhook.ErrMalformed},
		{name: "quoted id 1e3", body: `{"messageId":"m","data":[{"action":"created","timestamp":1,"entity":{"type":"job","id":"1e3"}}]}`, wantErr: webhook.ErrMalformed},
		{name: "timestamp 1e400", body: `{"messageId":"m","data":[{"action":"created","timestamp":1e400,"entity":{"type":"job","id":1}}]}`, wantErr: webhook.ErrMalformed},
		{name: "userId 1e400", body: `{"messageId":"m","data":[{"action":"created","timestamp":1,"userId":1e400,"entity":{"type":"job","id":1}}]}`, wantErr: webhook.ErrMalformed},
		{name: "changeset nested 65 deep", body: `{"messageId":"m","data":[{"action":"updated","timestamp":1,"entity":{"type":"job","id":1},"changeset":[{"field":"x","newValue":` + strings.Repeat("[", 60) + strings.Repeat("]", 60) + `}]}]}`, wantErr: webhook.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := webhook.ParseServiceTrade([]byte(tt.body))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if len(d.Items) != tt.wantN {
				t.Fatalf("items = %d, want %d", len(d.Items), tt.wantN)
			}
			if tt.wantN > 0 {
				it := d.Items[0]
				if it.EntityID != tt.wantID || it.Entity != tt.wantEntity || it.Action != tt.wantAction {
					t.Errorf("got %d %s %s", it.EntityID, it.Entity, it.Action)
				}
			}
		})
	}
}

func TestCheckToken(t *testing.T) {
	if err := webhook.CheckToken("dev-token", "dev-token"); err != nil {
		t.Errorf("same token: %v", err)
	}
	for _, c := range [][2]string{{"dev-tokem", "dev-token"}, {"", "dev-token"}, {"", ""}, {"dev-token-longer", "dev-token"}} {
		if err := webhook.CheckToken(c[0], c[1]); !errors.Is(err, webhook.ErrUnauthenticated) {
			t.Errorf("CheckToken(%q, %q) = %v", c[0], c[1], err)
		}
	}
}

func TestDedupIDSeparatesChangesWithinOneSecond(t *testing.T) {
	item := func(changeset string) string {
		d, err := webhook.ParseServiceTrade([]byte(`{"messageId":"m","data":[{"action":"updated","timestamp":1767106195,"entity":{"type":"job","id":7},"changeset":` + changeset + `}]}`))
		if err != nil {
			t.Fatal(err)
		}
		return d.Items[0].DedupID("demo")
	}
	a := item(`[{"field":"status","oldValue":"completed","newValue":"pending_invoice"}]`)
	b := item(`[{"field":"status","oldValue":"pending_invoice","newValue":"sending_invoice"}]`)
	again := item(` [ {"field": "status", "oldValue": "completed", "newValue": "pending_invoice"} ] `)
	if a == b {
		t.Fatalf("two different changes in one second share the id %s", a)
	}
	if a != again {
		t.Fatalf("the same change re-sent with other spacing got another id: %s, %s", a, again)
	}
	if bare := item(`null`); bare != "st:demo:work_order:7:updated:1767106195" {
		t.Fatalf("an item without changeset: %s", bare)
	}
}
