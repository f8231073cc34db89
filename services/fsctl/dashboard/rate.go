package dashboard

import (
	"sync"
	"time"
)

// rateSample is EVENTS' last sequence at one moment.
type rateSample struct {
	at  time.Time
	seq uint64
}

// rateMeter turns readings of a stream's last sequence into a rate: messages per second
// over the last window. It keeps a small ring of readings taken at least window/len(ring)
// apart, so any number of callers cost the same memory. It is safe for concurrent use.
type rateMeter struct {
	mu      sync.Mutex
	window  time.Duration
	minGap  time.Duration
	ring    []rateSample
	next    int // where the next sample goes
	n       int // samples held
	minSpan time.Duration
}

func newRateMeter(window time.Duration, size int) *rateMeter {
	return &rateMeter{window: window, minGap: window / time.Duration(size), ring: make([]rateSample, size), minSpan: 500 * time.Millisecond}
}

// observe records that the last sequence was seq at now and returns the rate since the
// oldest reading within the window, and the span it covers. ok is false until two readings
// at least half a second apart lie within the window. A sequence lower than the newest
// reading means the stream was purged or recreated: the readings start over.
func (m *rateMeter) observe(now time.Time, seq uint64) (perSecond float64, span time.Duration, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.n > 0 && seq < m.newest().seq {
		m.n = 0
	}
	var base *rateSample
	for i := m.n; i > 0; i-- { // oldest first
		s := &m.ring[(m.next-i+len(m.ring))%len(m.ring)]
		if now.Sub(s.at) <= m.window && !s.at.After(now) {
			base = s
			break
		}
	}
	if base != nil && now.Sub(base.at) >= m.minSpan {
		span = now.Sub(base.at)
		perSecond, ok = float64(seq-base.seq)/span.Seconds(), true
	}
	if m.n == 0 || now.Sub(m.newest().at) >= m.minGap {
		m.ring[m.next] = rateSample{at: now, seq: seq}
		m.next = (m.next + 1) % len(m.ring)
		m.n = min(m.n+1, len(m.ring))
	}
	return perSecond, span, ok
}

func (m *rateMeter) newest() rateSample {
	return m.ring[(m.next-1+len(m.ring))%len(m.ring)]
}
