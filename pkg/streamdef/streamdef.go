// Package streamdef loads JetStream stream definitions written in the nats CLI's JSON
// format and applies them to a server idempotently.
package streamdef

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"

	"github.com/nats-io/nats.go/jetstream"
)

// Load reads every *.json file at the root of fsys as a stream definition, in file-name
// order. A file that does not parse, or whose definition has no name, is an error naming
// the file.
func Load(fsys fs.FS) ([]jetstream.StreamConfig, error) {
	names, err := fs.Glob(fsys, "*.json")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	cfgs := make([]jetstream.StreamConfig, 0, len(names))
	for _, name := range names {
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		var cfg jetstream.StreamConfig
		if err := json.Unmarshal(b, &cfg); err != nil {
			return nil, fmt.Errorf("stream definition %s: %w", path.Base(name), err)
		}
		if cfg.Name == "" {
			return nil, fmt.Errorf("stream definition %s: no name", path.Base(name))
		}
		cfgs = append(cfgs, cfg)
	}
	return cfgs, nil
}

// Find returns the definition named name from cfgs, or false.
func Find(cfgs []jetstream.StreamConfig, name string) (*jetstream.StreamConfig, bool) {
	for i := range cfgs {
		if cfgs[i].Name == name {
			return &cfgs[i], true
		}
	}
	return nil, false
}

// Apply creates each stream that does not exist and updates each one that does to its
// definition. It never deletes or purges. A definition the server refuses (for example a
// change of storage type, which JetStream cannot update in place) is an error naming the
// stream; the streams before it stay applied.
func Apply(ctx context.Context, js jetstream.JetStream, cfgs []jetstream.StreamConfig) error {
	for _, cfg := range cfgs {
		_, err := js.CreateStream(ctx, cfg)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			_, err = js.UpdateStream(ctx, cfg)
		}
		if err != nil {
			return fmt.Errorf("apply stream %s: %w", cfg.Name, err)
		}
	}
	return nil
}

// OpenKeyValue returns the KV bucket cfg.Bucket as it is, creating it with cfg only if it
// does not exist (also when another process creates it at the same moment). Unlike
// CreateOrUpdateKeyValue it never changes an existing bucket, so binding needs no more than
// read access to the bucket's stream info: a service whose NATS user may not create or update
// a shared bucket still starts once an operator created it (with more replicas, say).
func OpenKeyValue(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, cfg.Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateKeyValue(ctx, cfg)
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = js.KeyValue(ctx, cfg.Bucket)
		}
	}
	return kv, err
}
