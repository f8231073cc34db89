// Package tenant holds the tenants fieldstream serves and their webhook credentials, in a
// JetStream KV bucket, so that a tenant can be added, re-keyed or throttled without a
// restart: `nats kv put fieldstream_tenants acme '{...}'` takes effect at once.
package tenant

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
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
	mu       sync.RWMutex
	tenants  map[string]*Tenant
	serving  map[string]uint64    // tenant → revision of the record served
	rejected map[string]Rejection // tenant → its newest record, which does not parse
	watcher  jetstream.KeyWatcher
}

// Rejection is a tenant whose newest record in the bucket does not parse. The tenant is
// still served from its last good record (Serving, its revision), or not at all when it
// has none (Serving 0): a typo in a record must not unserve a tenant, because ServiceTrade
// counts the 404 an unknown tenant gets as delivered and drops the events.
type Rejection struct {
	Tenant   string `json:"tenant"`
	Revision uint64 `json:"revision"` // of the rejected record
	Error    string `json:"error"`    // why; never a secret
	Serving  uint64 `json:"serving_revision,omitempty"`
}

// Watch loads every tenant from kv, returns once the initial load is complete, and keeps
// following the bucket until Stop is called. ctx bounds the initial load only: a
// directory that stopped following when a set-up deadline passed would answer 404 to
// every tenant added later, and ServiceTrade drops what is answered 404.
//
// A record that does not parse is logged (without its secrets) and listed by Rejected;
// the tenant keeps being served from its last good record. The initial load reads each
// key's history (the bucket keeps 5 revisions), so a directory started after a bad record
// was written still finds the good one before it.
func Watch(ctx context.Context, kv jetstream.KeyValue, log zerolog.Logger) (*Directory, error) {
	w, err := kv.WatchAll(context.WithoutCancel(ctx), jetstream.IncludeHistory())
	if err != nil {
		return nil, fmt.Errorf("watch tenants: %w", err)
	}
	d := &Directory{tenants: map[string]*Tenant{}, serving: map[string]uint64{}, rejected: map[string]Rejection{}, watcher: w}
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
	name := e.Key()
	if e.Operation() != jetstream.KeyValuePut {
		delete(d.tenants, name)
		delete(d.serving, name)
		delete(d.rejected, name)
		log.Info().Str("tenant", name).Msg("tenant removed")
		return
	}
	t, err := Parse(name, e.Value())
	if err != nil {
		r := Rejection{Tenant: name, Revision: e.Revision(), Error: err.Error(), Serving: d.serving[name]}
		d.rejected[name] = r
		ev := log.Error().Err(err).Str("tenant", name).Uint64("revision", r.Revision)
		if r.Serving > 0 {
			ev.Uint64("serving_revision", r.Serving).Msg("tenant record rejected; the tenant is served from its last good record")
		} else {
			ev.Msg("tenant record rejected; no good record to serve the tenant from")
		}
		return
	}
	d.tenants[name] = &t
	d.serving[name] = e.Revision()
	delete(d.rejected, name)
	log.Info().Str("tenant", name).Uint64("revision", e.Revision()).Msg("tenant loaded")
}

// Rejected returns the tenants whose newest record does not parse, by name.
func (d *Directory) Rejected() []Rejection {
	d.mu.RLock()
	defer d.mu.RUnlock()
	out := make([]Rejection, 0, len(d.rejected))
	for _, r := range d.rejected {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b Rejection) int { return strings.Compare(a.Tenant, b.Tenant) })
	return out
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
