package webhook

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/fieldstream/fieldstream/pkg/event"
)

// ServiceTradeDelivery is one ServiceTrade webhook delivery: a message id and a batch of
// thin items, each a reference to an entity that changed (domain.md).
type ServiceTradeDelivery struct {
	MessageID string
	Items     []ServiceTradeItem
}

// ServiceTradeItem is one change in a delivery, already normalized. Raw is the item
// exactly as sent, so consumers see the changeset and uri untouched.
type ServiceTradeItem struct {
	SourceEntity string // as sent: "job", "clock", …
	SourceAction string // as sent: "created", "updated", "deleted"
	Entity       string // normalized: "work_order", "time_entry", …
	Action       string // normalized, status-aware: "completed", "updated", …
	EntityID     int64
	Time         time.Time
	// Changeset is the item's changeset, compacted; empty when it has none.
	Changeset []byte
	Raw       json.RawMessage
}

// maxMessageIDLen bounds a delivery's messageId (ServiceTrade sends UUIDs).
const maxMessageIDLen = 256

// ParseServiceTrade parses ServiceTrade's native batched payload
// {"messageId":…,"timestamp":…,"data":[{"action":…,"timestamp":…,"entity":{"type":…,"id":…},"changeset":[…]}]}.
// Entity ids and timestamps are integers (a quoted integer is accepted too) kept exact as
// int64; messageId is at most 256 bytes. The body must be valid UTF-8 and strict JSON: no member name twice in one object
// (compared case-insensitively, as encoding/json matches fields), at most 64 levels deep,
// no number beyond float64's range, no unpaired UTF-16 surrogate escape. Errors match
// ErrMalformed and name the item at fault.
func ParseServiceTrade(body []byte) (ServiceTradeDelivery, error) {
	if !utf8.Valid(body) {
		return ServiceTradeDelivery{}, malformed("body is not valid UTF-8")
	}
	var p struct {
		MessageID string            `json:"messageId"`
		Data      []json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		return ServiceTradeDelivery{}, malformed("body: %v", err)
	}
	if err := checkStrict(body); err != nil {
		return ServiceTradeDelivery{}, err
	}
	if p.MessageID == "" {
		return ServiceTradeDelivery{}, malformed("messageId is missing")
	}
	if len(p.MessageID) > maxMessageIDLen {
		// Every event of the delivery carries it: a long one would multiply the body.
		return ServiceTradeDelivery{}, malformed("messageId longer than %d bytes", maxMessageIDLen)
	}
	d := ServiceTradeDelivery{MessageID: p.MessageID, Items: make([]ServiceTradeItem, 0, len(p.Data))}
	for i, raw := range p.Data {
		it, err := parseServiceTradeItem(raw)
		if err != nil {
			return ServiceTradeDelivery{}, malformed("data[%d]: %v", i, err)
		}
		d.Items = append(d.Items, it)
	}
	return d, nil
}

func parseServiceTradeItem(raw json.RawMessage) (ServiceTradeItem, error) {
	var it struct {
		Action    string      `json:"action"`
		Timestamp json.Number `json:"timestamp"`
		Entity    struct {
			Type string      `json:"type"`
			ID   json.Number `json:"id"`
		} `json:"entity"`
		Changeset json.RawMessage `json:"changeset"`
	}
	if err := json.Unmarshal(raw, &it); err != nil {
		return ServiceTradeItem{}, err
	}
	var changes []struct {
		Field    string          `json:"field"`
		NewValue json.RawMessage `json:"newValue"`
	}
	if len(it.Changeset) > 0 && string(it.Changeset) != "null" {
		if err := json.Unmarshal(it.Changeset, &changes); err != nil {
			return ServiceTradeItem{}, malformed("changeset: %v", err)
		}
	}
	id, err := strconv.ParseInt(it.Entity.ID.String(), 10, 64)
	if err != nil || id <= 0 {
		return ServiceTradeItem{}, malformed("entity.id %q: want a positive 64-bit integer", it.Entity.ID)
	}
	ts, err := strconv.ParseInt(it.Timestamp.String(), 10, 64)
	if err != nil || ts <= 0 {
		return ServiceTradeItem{}, malformed("timestamp %q: want Unix seconds", it.Timestamp)
	}
	var newStatus string
	for _, c := range changes {
		if c.Field == "status" {
			_ = json.Unmarshal(c.NewValue, &newStatus) // a non-string status names no action
		}
	}
	out := ServiceTradeItem{
		SourceEntity: it.Entity.Type,
		SourceAction: it.Action,
		Entity:       event.NormalizeEntity(it.Entity.Type),
		Action:       event.NormalizeAction(it.Action, newStatus),
		EntityID:     id,
		Time:         time.Unix(ts, 0),
		Raw:          raw,
	}
	if len(changes) > 0 {
		var buf bytes.Buffer
		_ = json.Compact(&buf, it.Changeset) // valid: it was just decoded
		out.Changeset = buf.Bytes()
	}
	if out.Entity == "" {
		return ServiceTradeItem{}, malformed("entity.type %q", it.Entity.Type)
	}
	if out.Action == "" {
		return ServiceTradeItem{}, malformed("action %q", it.Action)
	}
	return out, nil
}

// DedupID is the JetStream message id of the item for tenant. It is derived only from
// what a retried delivery repeats — tenant, entity, id, the normalized action, the item's
// timestamp and a digest of its changeset — so the sender's retries produce the same id and
// JetStream stores the event once. ServiceTrade's timestamps are whole seconds, so without
// the changeset two changes of one entity within a second (pending_invoice, then
// sending_invoice) would share an id and the second would be lost.
func (it ServiceTradeItem) DedupID(tenant string) string {
	id := ServiceTradeDedupID(tenant, it.Entity, it.EntityID, it.Action, it.Time.Unix())
	if len(it.Changeset) > 0 {
		h := sha256.Sum256(it.Changeset)
		id += ":" + hex.EncodeToString(h[:6])
	}
	return id
}

// ServiceTradeDedupID builds the id of a change known without its changeset, such as one a
// poller finds; DedupID extends it with the changeset's digest.
func ServiceTradeDedupID(tenant, entity string, id int64, action string, unixSeconds int64) string {
	b := make([]byte, 0, 64)
	b = append(b, "st:"...)
	b = append(b, tenant...)
	b = append(b, ':')
	b = append(b, entity...)
	b = append(b, ':')
	b = strconv.AppendInt(b, id, 10)
	b = append(b, ':')
	b = append(b, action...)
	b = append(b, ':')
	b = strconv.AppendInt(b, unixSeconds, 10)
	return string(b)
}

// CheckToken compares the token from a ServiceTrade hook URL with the tenant's in constant
// time (hashing first, so that not even the length leaks). An empty want never matches.
func CheckToken(got, want string) error {
	if want == "" {
		return ErrBadToken
	}
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	if subtle.ConstantTimeCompare(g[:], w[:]) != 1 {
		return ErrBadToken
	}
	return nil
}
