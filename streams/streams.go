// Package streams owns fieldstream's JetStream resources: the stream definitions beside this
// file (each in the exact JSON `nats stream add --config FILE` accepts), the names every
// service uses for them, the KV buckets several services share, and applying all of it.
// Binaries apply the streams at start-up; operators can apply the same files with the nats
// CLI, or run `fsctl setup`.
package streams

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Names of fieldstream's streams; <Name>.json beside this file defines each.
const (
	// Events holds every event fieldstream accepted, on events.<tenant>.<entity>.<id>.<action>.
	Events = "EVENTS"
	// DeadLetters holds what a consumer could not apply, on dlq.<consumer>.…, and the
	// redrives of dead letters, on redrive.<consumer>.<original subject>.
	DeadLetters = "DLQ"
	// Advisories keeps JetStream's MAX_DELIVERIES advisories.
	Advisories = "ADVISORIES"
)

// Files holds every *.json stream definition of this directory.
//
//go:embed *.json
var Files embed.FS

// Definitions returns every stream definition of Files, in file-name order.
func Definitions() ([]jetstream.StreamConfig, error) { return Load(Files) }

// Definition returns the definition of the stream named name.
func Definition(name string) (jetstream.StreamConfig, error) {
	cfgs, err := Definitions()
	if err != nil {
		return jetstream.StreamConfig{}, err
	}
	for _, c := range cfgs {
		if c.Name == name {
			return c, nil
		}
	}
	return jetstream.StreamConfig{}, fmt.Errorf("streams: no definition of %s", name)
}

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

// Options adjust the definitions when they are applied. A zero field keeps the
// definition's value.
type Options struct {
	// DuplicateWindow of Events: must cover the senders' whole retry horizon.
	DuplicateWindow time.Duration
	// MaxAge of Events: how long events stay replayable.
	MaxAge time.Duration
	// Replicas of every stream and shared bucket; 3 on a cluster.
	Replicas int
}

// RegisterFlags binds o to fs. The defaults shown are the definitions' own values.
func (o *Options) RegisterFlags(fs *flag.FlagSet) {
	ev, _ := Definition(Events) // the embedded files parse: TestDefinitions
	fs.DurationVar(&o.DuplicateWindow, "duplicate-window", ev.Duplicates, Events+" duplicate window: retries of one event within it are stored once")
	fs.DurationVar(&o.MaxAge, "events-max-age", ev.MaxAge, "how long "+Events+" keeps events")
	fs.IntVar(&o.Replicas, "stream-replicas", 0, "replicas of every stream (0 keeps the definition's; 3 on a cluster)")
}

// apply returns cfgs with o applied.
func (o Options) apply(cfgs []jetstream.StreamConfig) []jetstream.StreamConfig {
	for i := range cfgs {
		if cfgs[i].Name == Events {
			if o.DuplicateWindow > 0 {
				cfgs[i].Duplicates = o.DuplicateWindow
			}
			if o.MaxAge > 0 {
				cfgs[i].MaxAge = o.MaxAge
			}
		}
		if o.Replicas > 0 {
			cfgs[i].Replicas = o.Replicas
		}
	}
	return cfgs
}

// Apply creates each stream of Definitions that does not exist and updates each one that
// does, with o applied, and returns their names in order. It never deletes or purges. A
// definition the server refuses (a change of storage type, say, which JetStream cannot
// update in place) is an error naming the stream; the streams before it stay applied.
func Apply(ctx context.Context, js jetstream.JetStream, o Options) ([]string, error) {
	cfgs, err := Definitions()
	if err != nil {
		return nil, err
	}
	return ApplyConfigs(ctx, js, o.apply(cfgs))
}

// ApplyConfigs is Apply for the given definitions.
func ApplyConfigs(ctx context.Context, js jetstream.JetStream, cfgs []jetstream.StreamConfig) ([]string, error) {
	names := make([]string, 0, len(cfgs))
	for _, cfg := range cfgs {
		_, err := js.CreateStream(ctx, cfg)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			_, err = js.UpdateStream(ctx, cfg)
		}
		if err != nil {
			return names, fmt.Errorf("apply stream %s: %w", cfg.Name, err)
		}
		names = append(names, cfg.Name)
	}
	return names, nil
}
