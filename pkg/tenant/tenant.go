// Package tenant holds the tenants fieldstream serves and their webhook credentials, in a
// JetStream KV bucket, so that a tenant can be added, re-keyed or throttled without a
// restart: `nats kv put fieldstream_tenants acme '{...}'` takes effect at once.
package tenant

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/fieldstream/fieldstream/pkg/event"
	"github.com/fieldstream/fieldstream/pkg/webhook"
	"github.com/fieldstream/fieldstream/streams"
)

// Bucket is the KV bucket of tenants: key = tenant name, value = Config as JSON.
const Bucket = streams.TenantsBucket

// Config is a tenant's record as stored in the bucket.
type Config struct {
	// ServiceTradeToken is the secret path segment of the tenant's ServiceTrade hook URL,
	// /hooks/<tenant>/servicetrade/<token>. Empty disables that endpoint for the tenant.
	ServiceTradeToken string `json:"servicetrade_token,omitempty"`
	// StandardSecrets are the Standard Webhooks signing secrets ("whsec_…"); more than one
	// during key rotation. Empty disables that endpoint for the tenant.
	StandardSecrets []string `json:"standard_secrets,omitempty"`
	// RatePerSecond and Burst limit the events the tenant may send; zero takes the
	// gateway's defaults.
	RatePerSecond float64 `json:"rate_per_second,omitempty"`
	Burst         int     `json:"burst,omitempty"`
}

// Tenant is a parsed, validated Config. Its credentials are never logged: Secret's String is
// redacted and Tenant has no String that prints the token.
type Tenant struct {
	Name              string
	ServiceTradeToken string
	StandardSecrets   []webhook.Secret
	RatePerSecond     float64
	Burst             int
}

// ErrInvalid is returned for a tenant name or record that cannot be served.
var ErrInvalid = errors.New("invalid tenant")

// Parse validates a stored record. The name must be a subject token (letters, digits, '-',
// '_'); secrets must parse. Errors match ErrInvalid and never contain a secret.
func Parse(name string, value []byte) (Tenant, error) {
	if !event.ValidToken(name) {
		return Tenant{}, fmt.Errorf("%w: name %q: want letters, digits, '-' or '_'", ErrInvalid, name)
	}
	var c Config
	if err := json.Unmarshal(value, &c); err != nil {
		return Tenant{}, fmt.Errorf("%w %s: record is not JSON", ErrInvalid, name)
	}
	if c.RatePerSecond < 0 || c.Burst < 0 {
		return Tenant{}, fmt.Errorf("%w %s: negative rate or burst", ErrInvalid, name)
	}
	t := Tenant{Name: name, ServiceTradeToken: c.ServiceTradeToken, RatePerSecond: c.RatePerSecond, Burst: c.Burst}
	for i, s := range c.StandardSecrets {
		sec, err := webhook.ParseSecret(s)
		if err != nil {
			return Tenant{}, fmt.Errorf("%w %s: standard_secrets[%d]: %v", ErrInvalid, name, i, err)
		}
		t.StandardSecrets = append(t.StandardSecrets, sec)
	}
	return t, nil
}

// OpenBucket returns the tenants bucket, creating it from its definition in streams if it
// does not exist. An existing bucket is used as it is: binding it needs only read access to the
// bucket's stream info, so a gateway whose NATS user may not create or change it still
// starts (see deploy/), and an operator may create it beforehand with more replicas.
func OpenBucket(ctx context.Context, js jetstream.JetStream) (jetstream.KeyValue, error) {
	return streams.OpenBucket(ctx, js, Bucket)
}

// Put validates cfg and stores it as tenant name.
func Put(ctx context.Context, kv jetstream.KeyValue, name string, cfg Config) error {
	b, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	if _, err := Parse(name, b); err != nil {
		return err
	}
	_, err = kv.Put(ctx, name, b)
	return err
}

// Directory is a live, in-memory view of the tenants bucket. It is safe for concurrent use.
type Directory struct {
	mu      sync.RWMutex
	tenants map[string]*Tenant
	watcher jetstream.KeyWatcher
}

// Watch loads every tenant from kv, returns once the initial load is complete, and keeps
// following the bucket until Stop is called. ctx bounds the initial load only: a
// directory that stopped following when a set-up deadline passed would answer 404 to
// every tenant added later, and ServiceTrade drops what is answered 404. A record that does
// not parse is logged (without its secrets) and leaves that tenant unserved until it is
// fixed.
func Watch(ctx context.Context, kv jetstream.KeyValue, log zerolog.Logger) (*Directory, error) {
	w, err := kv.WatchAll(context.WithoutCancel(ctx))
	if err != nil {
		return nil, fmt.Errorf("watch tenants: %w", err)
	}
	d := &Directory{tenants: map[string]*Tenant{}, watcher: w}
	loaded := make(chan struct{})
	go func() {
		initial := true
		for e := range w.Updates() {
			if e == nil { // end of the initial values
				if initial {
					initial = false
					close(loaded)
				}
				continue
			}
			d.apply(e, log)
		}
		if initial {
			close(loaded)
		}
	}()
	select {
	case <-loaded:
		return d, nil
	case <-ctx.Done():
		_ = w.Stop()
		return nil, ctx.Err()
	}
}

func (d *Directory) apply(e jetstream.KeyValueEntry, log zerolog.Logger) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if e.Operation() != jetstream.KeyValuePut {
		delete(d.tenants, e.Key())
		log.Info().Str("tenant", e.Key()).Msg("tenant removed")
		return
	}
	t, err := Parse(e.Key(), e.Value())
	if err != nil {
		delete(d.tenants, e.Key())
		log.Error().Err(err).Str("tenant", e.Key()).Msg("tenant record rejected; tenant not served")
		return
	}
	d.tenants[t.Name] = &t
	log.Info().Str("tenant", t.Name).Uint64("revision", e.Revision()).Msg("tenant loaded")
}

// Lookup returns the tenant named name. The returned Tenant must not be modified.
func (d *Directory) Lookup(name string) (*Tenant, bool) {
	d.mu.RLock()
	t, ok := d.tenants[name]
	d.mu.RUnlock()
	return t, ok
}

// Stop stops following the bucket.
func (d *Directory) Stop() error { return d.watcher.Stop() }
