package servicetrade

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"time"
)

// APIBase is the base of the entity URIs in webhook items.
const APIBase = "https://api.servicetrade.com/api"

// Change is one webhook item: something happened to one entity. It marshals to exactly the
// item ServiceTrade sends; ids are int64 and never pass through float64.
type Change struct {
	Action    string    `json:"action"`    // ActionCreated, ActionUpdated or ActionDeleted
	Timestamp int64     `json:"timestamp"` // Unix seconds
	UserID    int64     `json:"userId"`    // who made the change
	Entity    EntityRef `json:"entity"`
	// Changeset lists the fields an update changed, status changes included. It is empty
	// for created and deleted items, and then left out of the JSON.
	Changeset []FieldChange `json:"changeset,omitempty"`
}

// EntityRef is the thin reference a webhook item carries instead of the entity.
type EntityRef struct {
	Type string `json:"type"` // TypeJob, TypeClock, …
	ID   int64  `json:"id"`
	URI  string `json:"uri"` // APIBase/<type>/<id>
}

// FieldChange is one changed field. Values are strings, int64s, []int64 or nil (JSON null),
// as in the entity's JSON.
type FieldChange struct {
	Field    string `json:"field"`
	OldValue any    `json:"oldValue"`
	NewValue any    `json:"newValue"`
}

// Ref returns the reference to the entity of type typ with id.
func Ref(typ string, id int64) EntityRef {
	return EntityRef{Type: typ, ID: id, URI: APIBase + "/" + typ + "/" + strconv.FormatInt(id, 10)}
}

// Delivery is one webhook POST: a batch of changes under one message id. A retried or
// duplicated delivery repeats the same MessageID and body.
type Delivery struct {
	MessageID string // a UUID v4
	Timestamp int64  // Unix seconds, sent as a string as ServiceTrade does
	Items     []Change
	// Seq numbers the deliveries a Sender builds in the order it builds them (1, 2, …), so
	// that tests and logs can see reordering. It is not sent; it is 0 for deliveries built
	// with NewDelivery.
	Seq uint64
}

// NewDelivery returns a delivery of items stamped now, with a fresh random message id.
func NewDelivery(items []Change, now time.Time) Delivery {
	return Delivery{MessageID: newUUID(), Timestamp: now.Unix(), Items: items}
}

// wireDelivery is ServiceTrade's payload:
// {"messageId":"…","timestamp":"1767106200","data":[…]}.
type wireDelivery struct {
	MessageID string   `json:"messageId"`
	Timestamp string   `json:"timestamp"`
	Data      []Change `json:"data"`
}

// Body returns the JSON payload of the delivery. The same delivery always gives the same
// bytes. An empty delivery has "data":[]. It fails only if a FieldChange holds a value JSON
// cannot encode.
func (d Delivery) Body() ([]byte, error) {
	items := d.Items
	if items == nil {
		items = []Change{}
	}
	return json.Marshal(wireDelivery{
		MessageID: d.MessageID,
		Timestamp: strconv.FormatInt(d.Timestamp, 10),
		Data:      items,
	})
}

// newUUID returns a random (version 4) UUID. Message ids come from crypto/rand, not from a
// seed: two simulators started with the same seed must still send distinct messages.
func newUUID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand, Go 1.24+)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:], b[10:])
	return string(s[:])
}
