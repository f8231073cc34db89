package gateway

import (
	"math"
	"sync"
	"time"

	"github.com/fieldstream/fieldstream/pkg/tenant"
)

// rateLimits keeps one token bucket of events per tenant. A tenant whose configured rate
// or burst changes gets a fresh bucket.
//
// Every event is charged, however many a delivery carries, so a tenant's rate is its
// rate. A delivery of more events than the burst could never fit in the bucket; it is
// taken once the bucket is full and charged in full, leaving the bucket in debt, so the
// deliveries after it wait until the tenant's rate has paid for it.
type rateLimits struct {
	defaultRate  float64
	defaultBurst int

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	rate   float64 // events per second
	burst  int
	tokens float64 // may be negative: the debt of a delivery larger than the burst
	at     time.Time
}

func newRateLimits(r float64, burst int) *rateLimits {
	return &rateLimits{defaultRate: r, defaultBurst: burst, buckets: map[string]*bucket{}}
}

// take charges n events to t's bucket at now. If the bucket cannot give them yet it
// charges nothing and returns how long until it can: until it holds n tokens, or, for
// n above the burst, until it is full.
func (l *rateLimits) take(t *tenant.Tenant, n int, now time.Time) (wait time.Duration, ok bool) {
	r, burst := t.RatePerSecond, t.Burst
	if r == 0 {
		r = l.defaultRate
	}
	if burst == 0 {
		burst = l.defaultBurst
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[t.Name]
	if b == nil || b.rate != r || b.burst != burst {
		b = &bucket{rate: r, burst: burst, tokens: float64(burst), at: now}
		l.buckets[t.Name] = b
	}
	if now.After(b.at) {
		b.tokens = math.Min(float64(b.burst), b.tokens+now.Sub(b.at).Seconds()*b.rate)
		b.at = now
	}
	need := math.Min(float64(n), float64(b.burst))
	if b.tokens < need {
		return time.Duration((need - b.tokens) / b.rate * float64(time.Second)), false
	}
	b.tokens -= float64(n)
	return 0, true
}
