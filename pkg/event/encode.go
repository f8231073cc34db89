package event

import (
	"encoding/json"
	"time"
	"unicode/utf8"
)

// AppendJSON appends the envelope's CloudEvents JSON to b. It writes the same document as
// json.Marshal, but copies Data as it is instead of re-validating and compacting it, which
// was the largest cost of the gateway's hot path; Data must therefore already be valid JSON
// (the webhook parsers only hand out data that encoding/json has validated).
func (ce *CloudEvent) AppendJSON(b []byte) []byte {
	b = append(b, `{"specversion":`...)
	b = appendString(b, ce.SpecVersion)
	b = append(b, `,"id":`...)
	b = appendString(b, ce.ID)
	b = append(b, `,"source":`...)
	b = appendString(b, ce.Source)
	b = append(b, `,"type":`...)
	b = appendString(b, ce.Type)
	b = append(b, `,"subject":`...)
	b = appendString(b, ce.Subject)
	b = append(b, `,"time":"`...)
	b = ce.Time.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","datacontenttype":`...)
	b = appendString(b, ce.DataContentType)
	b = append(b, `,"data":`...)
	if len(ce.Data) == 0 {
		b = append(b, "null"...)
	} else {
		b = append(b, ce.Data...)
	}
	b = append(b, `,"tenant":`...)
	b = appendString(b, ce.Tenant)
	b = append(b, `,"entity":`...)
	b = appendString(b, ce.Entity)
	b = append(b, `,"entityid":`...)
	b = appendString(b, ce.EntityID)
	b = append(b, `,"action":`...)
	b = appendString(b, ce.Action)
	b = append(b, `,"receivedtime":"`...)
	b = ce.ReceivedTime.AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	if ce.DeliveryID != "" {
		b = append(b, `,"deliveryid":`...)
		b = appendString(b, ce.DeliveryID)
	}
	return append(b, '}')
}

// appendString appends s as a JSON string: plain printable ASCII directly, anything else
// through encoding/json so that escaping is exactly the standard library's.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always marshals
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
