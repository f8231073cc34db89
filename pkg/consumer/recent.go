package consumer

import (
	"encoding/hex"
	"sync"
)

// DefaultRecentApplied is how many applied event ids a ledger remembers in memory.
const DefaultRecentApplied = 1 << 18

// recentSet remembers the most recently applied event keys (their 16-byte digests), a
// bounded set evicting the oldest first. It only ever answers "applied" for events the KV
// ledger recorded, so a miss just means asking the ledger.
type recentSet struct {
	mu   sync.Mutex
	ids  map[[16]byte]struct{}
	ring [][16]byte
	next int
}

func newRecentSet(n int) *recentSet {
	return &recentSet{ids: make(map[[16]byte]struct{}, n), ring: make([][16]byte, n)}
}

func (r *recentSet) add(k [16]byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.ids[k]; ok {
		return
	}
	if old := r.ring[r.next]; len(r.ids) == len(r.ring) {
		delete(r.ids, old)
	}
	r.ring[r.next] = k
	r.next = (r.next + 1) % len(r.ring)
	r.ids[k] = struct{}{}
}

func (r *recentSet) has(k [16]byte) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.ids[k]
	return ok
}

// Remember makes the ledger keep the last n applied event ids in memory (0: none): the
// ids it applied or found applied while running, so that a replay of recent events to a
// running consumer — the common case — is skipped without a round trip per event. (Loading
// them from the ledger at start-up was tried: it cost a restarted consumer more than it
// saved.) It must be called before the ledger is used.
func (l *Ledger) Remember(n int) {
	if n > 0 {
		l.recent = newRecentSet(n)
	}
}

func digestOf(hexKey string) ([16]byte, bool) {
	var k [16]byte
	b, err := hex.DecodeString(hexKey)
	if err != nil || len(b) != 16 {
		return k, false
	}
	copy(k[:], b)
	return k, true
}
