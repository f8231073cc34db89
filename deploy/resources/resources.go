// Package resources turns fieldstream's JetStream definitions — the stream and consumer
// files of streams/ (the JSON the nats CLI accepts) and the shared KV buckets that
// package streams defines in Go — into the resources platform teams manage declaratively:
// NACK custom resources (jetstream.nats.io/v1beta2 Stream, Consumer, KeyValue) and a
// Terraform module for the nats-io/jetstream provider (jetstream_stream,
// jetstream_consumer, jetstream_kv_bucket).
//
// Every field of a definition is carried over by one table (Fields), so the generated
// resources never hold a setting the definitions lack, and a definition field the table
// does not know is an error rather than a silent omission. `make resources` writes the
// files; a test fails when they differ from what streams/ says.
package resources

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/fieldstream/fieldstream/streams"
)

// Kind is what a definition defines.
type Kind string

// The kinds of definitions.
const (
	Stream   Kind = "stream"
	Consumer Kind = "consumer"
	Bucket   Kind = "bucket"
)

// Definition is one JetStream resource as the nats CLI's JSON states it.
type Definition struct {
	Kind Kind
	// Name is the stream's name, the consumer's durable name or the bucket's name.
	Name string
	// Stream is the stream a consumer consumes.
	Stream string
	// Fields is the JSON, numbers kept exact (json.Number).
	Fields map[string]any
	// Source says where the definition comes from, for messages.
	Source string
}

// ConsumersStream is the stream the consumers of streams/consumers/ consume
// (`nats consumer add EVENTS --config FILE`).
const ConsumersStream = streams.Events

// Load reads the definitions: every streams/*.json (dir is the streams directory), every
// streams/consumers/*.json, then the shared buckets of streams.Buckets, each group in name
// order.
func Load(dir string) ([]Definition, error) {
	var defs []Definition
	for _, g := range []struct {
		kind Kind
		glob string
		name string
	}{{Stream, "*.json", "name"}, {Consumer, "consumers/*.json", "durable_name"}} {
		files, err := filepath.Glob(filepath.Join(dir, g.glob))
		if err != nil {
			return nil, err
		}
		if len(files) == 0 {
			return nil, fmt.Errorf("resources: no %s definitions in %s", g.kind, filepath.Join(dir, g.glob))
		}
		sort.Strings(files)
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				return nil, err
			}
			rel, err := filepath.Rel(dir, f)
			if err != nil {
				return nil, err
			}
			d, err := decode(g.kind, b, g.name, "streams/"+filepath.ToSlash(rel))
			if err != nil {
				return nil, err
			}
			if g.kind == Consumer {
				d.Stream = ConsumersStream
			}
			defs = append(defs, d)
		}
	}
	for _, b := range streams.Buckets() {
		raw, err := json.Marshal(b)
		if err != nil {
			return nil, err
		}
		d, err := decode(Bucket, raw, "bucket", "streams.Buckets()")
		if err != nil {
			return nil, err
		}
		// jetstream.KeyValueConfig's JSON leaves out its zero values, which are settings
		// here: file storage, and one replica unless applied with more.
		if _, ok := d.Fields["storage"]; !ok {
			d.Fields["storage"] = "file"
		}
		if _, ok := d.Fields["num_replicas"]; !ok {
			d.Fields["num_replicas"] = json.Number("1")
		}
		defs = append(defs, d)
	}
	return defs, nil
}

func decode(kind Kind, b []byte, nameKey, source string) (Definition, error) {
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	var fields map[string]any
	if err := dec.Decode(&fields); err != nil {
		return Definition{}, fmt.Errorf("resources: %s: %w", source, err)
	}
	name, _ := fields[nameKey].(string)
	if name == "" {
		return Definition{}, fmt.Errorf("resources: %s: no %s", source, nameKey)
	}
	for k := range fields {
		if _, ok := FieldOf(kind, k); !ok {
			return Definition{}, fmt.Errorf("resources: %s: field %q has no NACK or Terraform counterpart in resources.Fields; add it there", source, k)
		}
	}
	return Definition{Kind: kind, Name: name, Fields: fields, Source: source}, nil
}

// Keys returns the definition's JSON keys in order.
func (d Definition) Keys() []string {
	keys := make([]string, 0, len(d.Fields))
	for k := range d.Fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// WithReplicas returns d with replicas r when r > 0 and d has replicas of its own (streams
// and buckets; a consumer takes its stream's), as `fsctl setup --replicas r` applies them.
func (d Definition) WithReplicas(r int) Definition {
	if r <= 0 || d.Kind == Consumer {
		return d
	}
	fields := make(map[string]any, len(d.Fields)+1)
	for k, v := range d.Fields {
		fields[k] = v
	}
	fields["num_replicas"] = json.Number(fmt.Sprint(r))
	d.Fields = fields
	return d
}

// K8sName is the Kubernetes object name of a definition: lower case, '_' as '-', a
// consumer prefixed with its stream.
func (d Definition) K8sName() string {
	n := d.Name
	if d.Kind == Consumer {
		n = d.Stream + "-" + n
	}
	return strings.ReplaceAll(strings.ToLower(n), "_", "-")
}

// TFName is the Terraform resource name of a definition (a consumer's prefixed with its
// stream's).
func (d Definition) TFName() string {
	if d.Kind == Consumer {
		return d.Stream + "_" + d.Name
	}
	return d.Name
}

var errConversion = errors.New("resources: value cannot be converted")
