// Package gateway is fieldstream's edge: it receives webhooks, authenticates them, and
// publishes every event they carry to JetStream, deduplicated by message id, before it
// answers. A 2xx means every event of the request is persisted in the EVENTS stream.
package gateway

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/rs/zerolog"

	"github.com/fieldstream/fieldstream/pkg/tenant"
	"github.com/fieldstream/fieldstream/pkg/webhook"
	"github.com/fieldstream/fieldstream/streams"
)

// Tenants finds a tenant by name and lists the records it could not use; *tenant.Directory
// implements it.
type Tenants interface {
	Lookup(name string) (*tenant.Tenant, bool)
	Rejected() []tenant.Rejection
}

// Config configures a Gateway. JetStream and Tenants are required; every other field has
// a default used when it is zero.
type Config struct {
	JetStream jetstream.JetStream
	Tenants   Tenants

	// Streams must exist for /readyz to answer ready. Default: streams.Events.
	Streams []string
	// Metrics is the registry the gateway's metrics join and /metrics serves (default: a
	// registry of its own, with Go and process collectors), so that a process running more
	// than the gateway serves all its metrics in one place.
	Metrics *prometheus.Registry
	// MaxBodyBytes is the largest request body accepted (default 1 MiB); a larger one is
	// answered 413 before more than this is read, chunked bodies included.
	MaxBodyBytes int64
	// AnswerWithin bounds a request from its arrival to its answer (default 4 s, inside
	// ServiceTrade's 5 s delivery timeout). Events not persisted by then answer 503.
	AnswerWithin time.Duration
	// Tolerance is how far a Standard Webhooks timestamp may be from now (default 5 min).
	Tolerance time.Duration
	// RatePerSecond and Burst are a tenant's event rate limit when its record sets none
	// (defaults 200/s and 400).
	RatePerSecond float64
	Burst         int
	// RetryAfter is the Retry-After of a 503 (default 2 s).
	RetryAfter time.Duration
	// CommitMaxEvents is the most events group-committed as one atomic batch (default
	// 500; the server allows 1000). Group commit pays off when the server fsyncs before
	// every acknowledgement (sync_interval: always, the production setting): one fsync per
	// batch instead of one per event. Without that, an atomic batch costs more than its
	// events published one by one (a single server stages each batch on disk), so use 1
	// there, which publishes every event on its own. A request with more events than this
	// is published on its own, event by event.
	CommitMaxEvents int
	// CommitConcurrency is the most batches in flight at once (default 1: a single server
	// stores one batch after another anyway, and the requests that arrive while one is
	// stored make the next one larger; `make bench` measured 2 and 4 slower).
	CommitConcurrency int
	// UnavailableAfter is how long JetStream may acknowledge nothing while a publish waits
	// before the gateway takes it as not storing (no stream leader, a failed store) and
	// answers 503 at once, publishing only a probe request every UnavailableAfter until one
	// is acknowledged (default 250 ms). It bounds how long a request waits on a JetStream
	// that does not answer.
	UnavailableAfter time.Duration

	Logger zerolog.Logger
	// Now is the clock (default time.Now); tests set it.
	Now func() time.Time
}

func (c *Config) setDefaults() {
	if len(c.Streams) == 0 {
		c.Streams = []string{streams.Events}
	}

	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = 1 << 20
	}
	if c.AnswerWithin == 0 {
		c.AnswerWithin = 4 * time.Second
	}
	if c.Tolerance == 0 {
		c.Tolerance = webhook.DefaultTolerance
	}
	if c.RatePerSecond == 0 {
		c.RatePerSecond = 200
	}
	if c.Burst == 0 {
		c.Burst = 400
	}
	if c.RetryAfter == 0 {
		c.RetryAfter = 2 * time.Second
	}
	if c.CommitMaxEvents == 0 {
		c.CommitMaxEvents = 500
	}
	if c.CommitConcurrency == 0 {
		c.CommitConcurrency = 1
	}
	if c.UnavailableAfter == 0 {
		c.UnavailableAfter = 250 * time.Millisecond
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	switch {
	case c.JetStream == nil:
		return errors.New("gateway: JetStream is required")
	case c.Tenants == nil:
		return errors.New("gateway: Tenants is required")
	case c.MaxBodyBytes < 0, c.AnswerWithin < 0, c.Tolerance < 0, c.RatePerSecond < 0, c.Burst < 0, c.RetryAfter < 0,
		c.CommitMaxEvents < 0, c.CommitConcurrency < 0, c.UnavailableAfter < 0:
		return errors.New("gateway: negative limit")
	case c.CommitMaxEvents > maxAtomicBatch:
		return fmt.Errorf("gateway: CommitMaxEvents %d: nats-server takes at most %d messages in an atomic batch", c.CommitMaxEvents, maxAtomicBatch)
	}
	return nil
}

const (
	maxAtomicBatch    = 1000    // nats-server's default max_batch_size
	maxBatchBytes     = 8 << 20 // bytes of one group commit, held in memory here and staged by the server
	seenPerGeneration = 1 << 19 // ids remembered per generation: ~1M in all, ~2 min at 8k events/s
)

// Gateway serves the webhook endpoints, health, readiness and metrics. It is an
// http.Handler, safe for concurrent use.
type Gateway struct {
	cfg     Config
	mux     *http.ServeMux
	pub     *publisher
	limits  *rateLimits
	metrics *metrics
	closers []func() error // of what Open started
}

// New returns a Gateway for cfg, or the error of cfg.Validate.
func New(cfg Config) (*Gateway, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Metrics == nil {
		cfg.Metrics = prometheus.NewRegistry()
		cfg.Metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	m, err := newMetrics(cfg.Metrics, cfg.Tenants)
	if err != nil {
		return nil, err
	}
	g := &Gateway{
		cfg:     cfg,
		mux:     http.NewServeMux(),
		pub:     newPublisher(cfg, m),
		limits:  newRateLimits(cfg.RatePerSecond, cfg.Burst),
		metrics: m,
	}
	g.mux.HandleFunc("POST /hooks/{tenant}/servicetrade/{token}", g.serveServiceTrade)
	g.mux.HandleFunc("POST /hooks/{tenant}/standard", g.serveStandard)
	g.mux.HandleFunc("/hooks/", g.serveNoHook)
	g.mux.HandleFunc("GET /healthz", g.serveHealth)
	g.mux.HandleFunc("GET /readyz", g.serveReady)
	g.mux.Handle("GET /metrics", g.metricsHandler())
	return g, nil
}

// ServeHTTP implements http.Handler.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) { g.mux.ServeHTTP(w, r) }

// NewHTTPServer returns an http.Server for h on addr with the default HTTPLimits, which
// keep slow or stalled clients from holding it: headers within 2 s, the whole request within
// 3 s, the answer written within 5 s, idle keep-alive connections closed after 60 s, header
// blocks up to 64 KiB.
func NewHTTPServer(addr string, h http.Handler) *http.Server {
	return HTTPLimits{}.Server(addr, h)
}

// HTTPLimits bound what one client may hold of an HTTP server. A zero field takes its
// default. Requests the limits cut off never reach the handler: net/http closes a
// connection whose headers are late, and answers an oversized header block with its own
// plain-text 431. A body still arriving at RequestWithin fails the handler's read.
type HTTPLimits struct {
	HeaderWithin   time.Duration // request line and headers (default 2 s)
	RequestWithin  time.Duration // the whole request, body included (default 3 s)
	WriteWithin    time.Duration // from the end of the headers to the answer written (default 5 s)
	IdleAfter      time.Duration // an idle keep-alive connection is closed (default 60 s)
	MaxHeaderBytes int           // request line and headers (default 64 KiB)
}

// Server returns an http.Server for h on addr within l.
func (l HTTPLimits) Server(addr string, h http.Handler) *http.Server {
	def := func(d, v time.Duration) time.Duration {
		if d == 0 {
			return v
		}
		return d
	}
	if l.MaxHeaderBytes == 0 {
		l.MaxHeaderBytes = 64 << 10
	}
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: def(l.HeaderWithin, 2*time.Second),
		ReadTimeout:       def(l.RequestWithin, 3*time.Second),
		WriteTimeout:      def(l.WriteWithin, 5*time.Second),
		IdleTimeout:       def(l.IdleAfter, 60*time.Second),
		MaxHeaderBytes:    l.MaxHeaderBytes,
	}
}
