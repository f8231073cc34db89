// Package fault injects the failures of real outside systems into a simulator at run time:
// added latency, a share of requests failing with a chosen status, a full outage, and a
// request-rate limit answered 429 with Retry-After. A simulator wraps its handler with an
// Injector and mounts Injector.AdminHandler, so tests and operators change faults over HTTP
// while it runs:
//
//	curl -X PUT localhost:9101/admin/faults -d '{"latency_ms":200,"error_rate":0.1,"error_status":503}'
//	curl -X PUT localhost:9101/admin/faults -d '{}'   # back to healthy
package fault

import (
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Faults is the injected behaviour; the zero value is a healthy system.
type Faults struct {
	// LatencyMS is added before every request is handled.
	LatencyMS int `json:"latency_ms,omitempty"`
	// ErrorRate is the share of requests (0..1) answered ErrorStatus without being handled.
	ErrorRate float64 `json:"error_rate,omitempty"`
	// ErrorStatus of injected errors; default 503.
	ErrorStatus int `json:"error_status,omitempty"`
	// Outage answers every request 503 (with Retry-After 1) without handling it.
	Outage bool `json:"outage,omitempty"`
	// RatePerSecond, if positive, limits handled requests per second; the rest are
	// answered 429 with Retry-After.
	RatePerSecond float64 `json:"rate_per_second,omitempty"`
	// FailNext answers the next N requests ErrorStatus, then counts down to 0.
	FailNext int `json:"fail_next,omitempty"`
}

// Stats counts what the injector did.
type Stats struct {
	Requests    int64 `json:"requests"`
	Injected    int64 `json:"injected_errors"`
	RateLimited int64 `json:"rate_limited"`
	OutageHits  int64 `json:"outage_hits"`
}

// Injector applies Faults to the requests of a handler. It is safe for concurrent use.
// Requests under AdminPrefix are never faulted.
type Injector struct {
	mu     sync.Mutex
	faults Faults
	stats  Stats
	// token bucket for RatePerSecond
	tokens float64
	last   time.Time
}

// AdminPrefix is where admin endpoints live; they are exempt from faults.
const AdminPrefix = "/admin/"

// Set replaces the faults.
func (in *Injector) Set(f Faults) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.faults = f
	in.tokens, in.last = f.RatePerSecond, time.Now()
}

// Faults returns the current faults.
func (in *Injector) Faults() Faults {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.faults
}

// Stats returns the counts so far.
func (in *Injector) Stats() Stats {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.stats
}

// decide returns the status to inject (0: handle normally), the Retry-After to send and the
// latency to add.
func (in *Injector) decide(now time.Time) (status int, retryAfter int, latency time.Duration) {
	in.mu.Lock()
	defer in.mu.Unlock()
	f := &in.faults
	in.stats.Requests++
	latency = time.Duration(f.LatencyMS) * time.Millisecond
	errStatus := f.ErrorStatus
	if errStatus == 0 {
		errStatus = http.StatusServiceUnavailable
	}
	switch {
	case f.Outage:
		in.stats.OutageHits++
		return http.StatusServiceUnavailable, 1, latency
	case f.FailNext > 0:
		f.FailNext--
		in.stats.Injected++
		return errStatus, 0, latency
	case f.ErrorRate > 0 && rand.Float64() < f.ErrorRate:
		in.stats.Injected++
		return errStatus, 0, latency
	}
	if f.RatePerSecond > 0 {
		in.tokens = min(f.RatePerSecond, in.tokens+now.Sub(in.last).Seconds()*f.RatePerSecond)
		in.last = now
		if in.tokens < 1 {
			in.stats.RateLimited++
			wait := (1 - in.tokens) / f.RatePerSecond
			return http.StatusTooManyRequests, max(1, int(wait+0.999)), latency
		}
		in.tokens--
	}
	return 0, 0, latency
}

// Wrap returns next with the faults applied.
func (in *Injector) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, AdminPrefix) {
			next.ServeHTTP(w, r)
			return
		}
		status, retryAfter, latency := in.decide(time.Now())
		if latency > 0 {
			select {
			case <-time.After(latency):
			case <-r.Context().Done():
				return
			}
		}
		if status != 0 {
			if retryAfter > 0 {
				w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			_, _ = w.Write([]byte(`{"error":"injected fault"}` + "\n"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// AdminHandler serves GET and PUT /admin/faults (the Faults as JSON) and GET
// /admin/fault-stats.
func (in *Injector) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /admin/faults", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, in.Faults()) })
	mux.HandleFunc("PUT /admin/faults", func(w http.ResponseWriter, r *http.Request) {
		var f Faults
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&f); err != nil {
			http.Error(w, "faults: "+err.Error(), http.StatusBadRequest)
			return
		}
		in.Set(f)
		writeJSON(w, f)
	})
	mux.HandleFunc("GET /admin/fault-stats", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, in.Stats()) })
	return mux
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
