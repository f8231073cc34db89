package event

import (
	"encoding/json"
	"time"
)

// SpecVersion is the CloudEvents version of every envelope.
const SpecVersion = "1.0"

// ContentType is the NATS Content-Type header of a stored event: a CloudEvent in
// structured mode.
const ContentType = "application/cloudevents+json"

// TypePrefix starts every CloudEvents type: "dev.fieldstream.work_order.completed".
const TypePrefix = "dev.fieldstream."

// Sources of events, kept in the envelope's source attribute as "<Source>/<tenant>".
const (
	SourceServiceTrade = "servicetrade"
	SourceStandard     = "standard-webhooks"
)

// CloudEvent is the envelope of every message in the EVENTS stream: CloudEvents 1.0 in
// structured JSON mode, so that CloudEvents tooling reads it as is. Data is the sender's item
// byte for byte; it is never decoded into Go numbers, so int64 ids stay exact.
//
// The fieldstream extension attributes (tenant, entity, entityid, action, receivedtime,
// deliveryid) follow the CloudEvents naming rule: lower-case letters and digits only.
// EntityID is a string because CloudEvents integers are 32-bit.
type CloudEvent struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	Type            string          `json:"type"`
	Subject         string          `json:"subject"`
	Time            time.Time       `json:"time"`
	DataContentType string          `json:"datacontenttype"`
	Data            json.RawMessage `json:"data"`

	Tenant       string    `json:"tenant"`
	Entity       string    `json:"entity"`
	EntityID     string    `json:"entityid"`
	Action       string    `json:"action"`
	ReceivedTime time.Time `json:"receivedtime"`
	// DeliveryID is the sender's id of the delivery that carried the event (ServiceTrade's
	// messageId, the webhook-id); one delivery can carry many events.
	DeliveryID string `json:"deliveryid,omitempty"`
}

// New fills the envelope's fixed attributes for an event of tenant about entity id,
// delivered by source. id must be the event's deduplication id: it is also the CloudEvents
// id, so the pair (source, id) is unique as the spec requires.
func New(source, tenant, entity, entityID, action, id string, at, received time.Time, data json.RawMessage) CloudEvent {
	return CloudEvent{
		SpecVersion:     SpecVersion,
		ID:              id,
		Source:          source + "/" + tenant,
		Type:            TypePrefix + entity + "." + action,
		Subject:         entity + "/" + entityID,
		Time:            at.UTC(),
		DataContentType: "application/json",
		Data:            data,
		Tenant:          tenant,
		Entity:          entity,
		EntityID:        entityID,
		Action:          action,
		ReceivedTime:    received.UTC(),
	}
}
