package gateway

import (
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/fieldstream/fieldstream/pkg/tenant"
)

// rateLimits keeps one token bucket of events per tenant. A tenant whose configured rate
// or burst changes gets a fresh bucket.
type rateLimits struct {
	defaultRate  float64
	defaultBurst int

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	rate  float64
	burst int
	lim   *rate.Limiter
}

func newRateLimits(r float64, burst int) *rateLimits {
	return &rateLimits{defaultRate: r, defaultBurst: burst, buckets: map[string]*bucket{}}
}

// take takes n events from t's bucket. If the bucket cannot give them now it takes
// nothing and returns how long until it can; a request larger than the burst needs a
// full bucket.
func (l *rateLimits) take(t *tenant.Tenant, n int, now time.Time) (wait time.Duration, ok bool) {
	r, burst := t.RatePerSecond, t.Burst
	if r == 0 {
		r = l.defaultRate
	}
	if burst == 0 {
		burst = l.defaultBurst
	}
	l.mu.Lock()
	b := l.buckets[t.Name]
	if b == nil || b.rate != r || b.burst != burst {
		b = &bucket{rate: r, burst: burst, lim: rate.NewLimiter(rate.Limit(r), burst)}
		l.buckets[t.Name] = b
	}
	l.mu.Unlock()
	n = min(n, burst)
	res := b.lim.ReserveN(now, n)
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return d, false
	}
	return 0, true
}
