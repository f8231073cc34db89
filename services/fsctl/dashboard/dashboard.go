// Package dashboard serves a live operations dashboard of fieldstream: one self-contained
// HTML page that refreshes itself, and the JSON it reads. It shows what `fsctl status` shows
// (package ops is its data source) and what a status line cannot: the ingest rate into
// EVENTS, each consumer's lag, and the replays under way.
//
// The page needs nothing from outside: its CSS and script are inline, it loads no URL but
// its own JSON, and its Content-Security-Policy says so. Every number on it carries a stable
// data-testid (see page.js) so that tests and scrapers can read it.
//
// The dashboard only reads; it has no authentication. Serve it where only operators reach.
package dashboard

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// Options configure a Dashboard. The zero value is ready to use: every zero field takes the
// default its comment gives.
type Options struct {
	// Prefix is the path the dashboard is mounted at, with a slash at each end; default
	// "/dashboard/". The page is served at Prefix and its JSON at Prefix + "api/status".
	// Mount the handler at Prefix unchanged (no http.StripPrefix).
	Prefix string
	// Refresh is how often the page fetches the status; default 2 s.
	Refresh time.Duration
	// RateWindow is the span the ingest rate is averaged over; default 30 s.
	RateWindow time.Duration
	// Reuse is how long a status read serves later requests, so that many open pages cost
	// one read; default 1 s.
	Reuse time.Duration
	// Timeout bounds one status read (which reads every dead letter); default 4 s, within
	// the gateway HTTP server's 5 s write timeout.
	Timeout time.Duration
	// SampleEvery is how often a point is added to the charts' History (default 15 s), and
	// HistoryWindow how far back they go (default 1 h).
	SampleEvery   time.Duration
	HistoryWindow time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Logger receives what goes wrong in the background (Metrics' count per tenant); the
	// zero value logs nothing.
	Logger zerolog.Logger
}

// Validate reports options that cannot work; zero values are fine.
func (o Options) Validate() error {
	if o.Prefix != "" && (!strings.HasPrefix(o.Prefix, "/") || !strings.HasSuffix(o.Prefix, "/")) {
		return fmt.Errorf("dashboard: prefix %q must start and end with /", o.Prefix)
	}
	for name, d := range map[string]time.Duration{"refresh": o.Refresh, "rate window": o.RateWindow, "reuse": o.Reuse, "timeout": o.Timeout,
		"sample interval": o.SampleEvery, "history window": o.HistoryWindow} {
		if d < 0 {
			return fmt.Errorf("dashboard: negative %s %s", name, d)
		}
	}
	if o.Refresh != 0 && o.Refresh < 100*time.Millisecond {
		return fmt.Errorf("dashboard: refresh %s is below 100ms", o.Refresh)
	}
	return nil
}

func (o Options) withDefaults() Options {
	if o.Prefix == "" {
		o.Prefix = "/dashboard/"
	}
	if o.Refresh == 0 {
		o.Refresh = 2 * time.Second
	}
	if o.RateWindow == 0 {
		o.RateWindow = 30 * time.Second
	}
	if o.Reuse == 0 {
		o.Reuse = time.Second
	}
	if o.Timeout == 0 {
		o.Timeout = 4 * time.Second
	}
	if o.SampleEvery == 0 {
		o.SampleEvery = 15 * time.Second
	}
	if o.HistoryWindow == 0 {
		o.HistoryWindow = time.Hour
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// rateSamples is the size of the ingest-rate ring.
const rateSamples = 32

// Dashboard is an http.Handler serving GET Prefix (the page) and GET Prefix+"api/status"
// (the Snapshot as JSON); anything else under Prefix is a 404. It is safe for concurrent
// use and holds no goroutine of its own (Run, if run, samples the charts' history).
type Dashboard struct {
	js   jetstream.JetStream
	opts Options
	mux  *http.ServeMux
	page []byte
	csp  string
	rate *rateMeter
	hist *history

	mu       sync.Mutex
	last     *result
	lastAt   time.Time
	inflight chan struct{} // closed when the read under way ends
}

//go:embed page.html
var pageHTML string

//go:embed page.css
var pageCSS string

//go:embed page.js
var pageJS string

// New returns the dashboard of the fieldstream streams js reaches. It reads nothing
// until a request comes.
func New(js jetstream.JetStream, opts Options) (*Dashboard, error) {
	if js == nil {
		return nil, errors.New("dashboard: no JetStream")
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	d := &Dashboard{js: js, opts: opts, mux: http.NewServeMux(), rate: newRateMeter(opts.RateWindow, rateSamples),
		hist: &history{every: opts.SampleEvery, window: opts.HistoryWindow}}
	var err error
	if d.page, err = renderPage(opts.Refresh); err != nil {
		return nil, err
	}
	// The page may run its own inline script and style and fetch its own origin; nothing else.
	d.csp = "default-src 'none'; script-src '" + sha256Source(pageJS) + "'; style-src '" + sha256Source(pageCSS) +
		"'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
	d.mux.HandleFunc("GET "+opts.Prefix+"{$}", d.servePage)
	d.mux.HandleFunc("GET "+opts.Prefix+"api/status", d.serveStatus)
	return d, nil
}

// ServeHTTP serves the page and its JSON.
func (d *Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) { d.mux.ServeHTTP(w, r) }

func (d *Dashboard) servePage(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", d.csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-cache")
	_, _ = w.Write(d.page)
}

func (d *Dashboard) serveStatus(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	snap, err := d.Snapshot(r.Context())
	if err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error(), "code": "status_unavailable"})
		return
	}
	_ = json.NewEncoder(w).Encode(snap)
}

// renderPage fills the page's template once: the page is the same for every request.
func renderPage(refresh time.Duration) ([]byte, error) {
	tmpl, err := template.New("page").Parse(pageHTML)
	if err != nil {
		return nil, fmt.Errorf("dashboard page: %w", err)
	}
	var b bytes.Buffer
	err = tmpl.Execute(&b, struct {
		RefreshMS int64
		CSS       template.CSS
		JS        template.JS
	}{refresh.Milliseconds(), template.CSS(pageCSS), template.JS(pageJS)})
	if err != nil {
		return nil, fmt.Errorf("dashboard page: %w", err)
	}
	return b.Bytes(), nil
}

func sha256Source(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "sha256-" + base64.StdEncoding.EncodeToString(sum[:])
}
