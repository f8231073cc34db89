package gateway

import (
	"hash/maphash"
	"sync"

	"github.com/fieldstream/fieldstream/pkg/event"
)

// seenIDs remembers the dedup ids of recently published events, as 64-bit hashes, in two
// generations of at most perGeneration each: when the current one fills up, it becomes
// the previous one and the oldest is forgotten. A hash collision only makes contains
// answer true for an id never seen, which costs its request the slower one-by-one path.
type seenIDs struct {
	seed          maphash.Seed
	perGeneration int

	mu       sync.Mutex
	current  map[uint64]struct{}
	previous map[uint64]struct{}
}

func newSeenIDs(perGeneration int) *seenIDs {
	return &seenIDs{seed: maphash.MakeSeed(), perGeneration: perGeneration, current: make(map[uint64]struct{})}
}

// addAll records msgs' ids and reports whether any of them was recorded before.
func (s *seenIDs) addAll(msgs []event.Message) (anySeen bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range msgs {
		h := maphash.String(s.seed, m.ID)
		if _, ok := s.current[h]; ok {
			anySeen = true
			continue
		}
		if _, ok := s.previous[h]; ok {
			anySeen = true
		}
		if len(s.current) >= s.perGeneration {
			s.previous, s.current = s.current, make(map[uint64]struct{}, s.perGeneration)
		}
		s.current[h] = struct{}{}
	}
	return anySeen
}
