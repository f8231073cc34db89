package consumer

import "sync"

// entityLocks keep the consumers of one process — a service's live consumer, its replays and
// its redrives, which share a ledger — from working on one entity at once: the ledger's
// version claim orders replicas of a service against each other, but two consumers of one
// process would otherwise both read the ledger before either recorded, and apply one event
// twice or an older change after a newer one. A lock is held from reading the ledger to
// recording what was applied. Safe for concurrent use.
type entityLocks struct {
	mu   sync.Mutex
	held map[string]chan struct{} // closed when released
}

// lockFree locks the keys of the messages at idx that nobody holds and returns those
// messages (mine), the others (rest), and a channel closed when a holder of one of the
// others releases it. Messages of one key are either all mine or all rest. A caller never
// waits while holding a lock, so locks cannot deadlock.
func (e *entityLocks) lockFree(keys []string, idx []int) (mine, rest []int, released <-chan struct{}) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.held == nil {
		e.held = map[string]chan struct{}{}
	}
	taken := map[string]bool{}
	for _, i := range idx {
		k := keys[i]
		if ch, busy := e.held[k]; busy && !taken[k] {
			rest = append(rest, i)
			if released == nil {
				released = ch
			}
			continue
		}
		if !taken[k] {
			e.held[k] = make(chan struct{})
			taken[k] = true
		}
		mine = append(mine, i)
	}
	return mine, rest, released
}

// unlock releases the keys of the messages at idx, which lockFree gave the caller.
func (e *entityLocks) unlock(keys []string, idx []int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, i := range idx {
		if ch, ok := e.held[keys[i]]; ok {
			close(ch)
			delete(e.held, keys[i])
		}
	}
}
