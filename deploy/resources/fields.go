package resources

import (
	"encoding/json"
	"fmt"
	"time"
)

// Conversion says how a definition's JSON value becomes the NACK and Terraform values.
type Conversion int

const (
	// Same: a string, integer, bool, list of strings or map of strings, carried as it is.
	Same Conversion = iota
	// Duration: nanoseconds in the JSON; a Go duration ("15m0s") in NACK, whole seconds in
	// Terraform.
	Duration
	// Replicas: carried as it is to NACK; in Terraform the module's var.replicas, which the
	// caller sets (1 on one server, 3 on a cluster).
	Replicas
	// DeliverPolicy: carried as it is to NACK; in Terraform deliver_all or deliver_last set
	// to true.
	DeliverPolicy
)

// Field is one definition field and its counterparts.
type Field struct {
	Kind Kind
	JSON string // key in the nats CLI JSON (for buckets: jetstream.KeyValueConfig's JSON)
	NACK string // key in the NACK spec
	TF   string // attribute of the Terraform resource (DeliverPolicy: see there)
	Conv Conversion
}

// Fields are every definition field fieldstream's definitions may use. A field missing
// here fails Load, so the resources cannot silently drop a setting.
var Fields = []Field{
	{Stream, "name", "name", "name", Same},
	{Stream, "description", "description", "description", Same},
	{Stream, "subjects", "subjects", "subjects", Same},
	{Stream, "retention", "retention", "retention", Same},
	{Stream, "max_consumers", "maxConsumers", "max_consumers", Same},
	{Stream, "max_msgs", "maxMsgs", "max_msgs", Same},
	{Stream, "max_bytes", "maxBytes", "max_bytes", Same},
	{Stream, "max_age", "maxAge", "max_age", Duration},
	{Stream, "max_msgs_per_subject", "maxMsgsPerSubject", "max_msgs_per_subject", Same},
	{Stream, "max_msg_size", "maxMsgSize", "max_msg_size", Same},
	{Stream, "discard", "discard", "discard", Same},
	{Stream, "discard_new_per_subject", "discardPerSubject", "discard_new_per_subject", Same},
	{Stream, "storage", "storage", "storage", Same},
	{Stream, "num_replicas", "replicas", "replicas", Replicas},
	{Stream, "duplicate_window", "duplicateWindow", "duplicate_window", Duration},
	{Stream, "allow_direct", "allowDirect", "allow_direct", Same},
	{Stream, "allow_atomic", "allowAtomicPublish", "allow_atomic", Same},
	{Stream, "allow_rollup_hdrs", "allowRollup", "allow_rollup_hdrs", Same},
	{Stream, "allow_msg_ttl", "allowMsgTtl", "allow_msg_ttl", Same},
	{Stream, "deny_delete", "denyDelete", "deny_delete", Same},
	{Stream, "deny_purge", "denyPurge", "deny_purge", Same},
	{Stream, "compression", "compression", "compression", Same},
	{Stream, "persist_mode", "persistMode", "persist_mode", Same},
	{Stream, "metadata", "metadata", "metadata", Same},

	{Consumer, "durable_name", "durableName", "durable_name", Same},
	{Consumer, "description", "description", "description", Same},
	{Consumer, "deliver_policy", "deliverPolicy", "deliver_all", DeliverPolicy},
	{Consumer, "ack_policy", "ackPolicy", "ack_policy", Same},
	{Consumer, "ack_wait", "ackWait", "ack_wait", Duration},
	{Consumer, "max_deliver", "maxDeliver", "max_delivery", Same},
	{Consumer, "filter_subject", "filterSubject", "filter_subject", Same},
	{Consumer, "filter_subjects", "filterSubjects", "filter_subjects", Same},
	{Consumer, "replay_policy", "replayPolicy", "replay_policy", Same},
	{Consumer, "max_ack_pending", "maxAckPending", "max_ack_pending", Same},
	{Consumer, "max_waiting", "maxWaiting", "max_waiting", Same},
	{Consumer, "inactive_threshold", "inactiveThreshold", "inactive_threshold", Duration},
	{Consumer, "num_replicas", "replicas", "replicas", Same},
	{Consumer, "mem_storage", "memStorage", "memory", Same},
	{Consumer, "headers_only", "headersOnly", "headers_only", Same},
	{Consumer, "metadata", "metadata", "metadata", Same},

	{Bucket, "bucket", "bucket", "name", Same},
	{Bucket, "description", "description", "description", Same},
	{Bucket, "history", "history", "history", Same},
	{Bucket, "ttl", "ttl", "ttl", Duration},
	{Bucket, "max_bytes", "maxBytes", "max_bucket_size", Same},
	{Bucket, "max_value_size", "maxValueSize", "max_value_size", Same},
	{Bucket, "storage", "storage", "storage", Same},
	{Bucket, "num_replicas", "replicas", "replicas", Replicas},
}

// FieldOf returns the Field of JSON key key of a definition of kind.
func FieldOf(kind Kind, key string) (Field, bool) {
	for _, f := range Fields {
		if f.Kind == kind && f.JSON == key {
			return f, true
		}
	}
	return Field{}, false
}

// NACKValue is the NACK spec value of JSON value v of f.
func (f Field) NACKValue(v any) (any, error) {
	if f.Conv == Duration {
		ns, err := integer(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.JSON, err)
		}
		return time.Duration(ns).String(), nil
	}
	return plain(f.JSON, v)
}

// TFSeconds is the Terraform value of a Duration field: whole seconds.
func (f Field) TFSeconds(v any) (int64, error) {
	ns, err := integer(v)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", f.JSON, err)
	}
	if ns%int64(time.Second) != 0 {
		return 0, fmt.Errorf("%s: %v is no whole number of seconds, which Terraform's provider takes: %w", f.JSON, time.Duration(ns), errConversion)
	}
	return ns / int64(time.Second), nil
}

// TFDeliverAttribute is the Terraform attribute a DeliverPolicy value sets to true.
func (f Field) TFDeliverAttribute(v any) (string, error) {
	switch v {
	case "all":
		return "deliver_all", nil
	case "last":
		return "deliver_last", nil
	}
	return "", fmt.Errorf("%s %v: the Terraform provider has no such attribute: %w", f.JSON, v, errConversion)
}

// plain returns v as a Go value of a plain type: int64, string, bool, []string or
// map[string]string.
func plain(key string, v any) (any, error) {
	switch x := v.(type) {
	case string, bool:
		return x, nil
	case json.Number:
		return integer(x)
	case []any:
		out := make([]string, len(x))
		for i, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("%s[%d]: %T: %w", key, i, e, errConversion)
			}
			out[i] = s
		}
		return out, nil
	case map[string]any:
		out := make(map[string]string, len(x))
		for k, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("%s.%s: %T: %w", key, k, e, errConversion)
			}
			out[k] = s
		}
		return out, nil
	}
	return nil, fmt.Errorf("%s: %T: %w", key, v, errConversion)
}

func integer(v any) (int64, error) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, fmt.Errorf("%v is no number: %w", v, errConversion)
	}
	i, err := n.Int64()
	if err != nil {
		return 0, fmt.Errorf("%v: %w", v, errConversion)
	}
	return i, nil
}
