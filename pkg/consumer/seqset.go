package consumer

import (
	"sort"
	"sync"
)

// seqSet is a set of stream sequences kept as sorted, disjoint, non-adjacent closed
// intervals: the EVENTS sequences a consumer applied. Applied events are mostly
// consecutive, so a day of them is a handful of intervals, which is what lets a restarted
// consumer skip a replayed window without asking the ledger about every event. Safe for
// concurrent use.
type seqSet struct {
	mu  sync.Mutex
	ivs [][2]uint64
}

func (s *seqSet) add(seq uint64) {
	if seq == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.ivs)
	// The common case: at or just after the last interval.
	if n > 0 && seq >= s.ivs[n-1][0] {
		switch {
		case seq <= s.ivs[n-1][1]:
		case seq == s.ivs[n-1][1]+1:
			s.ivs[n-1][1] = seq
		default:
			s.ivs = append(s.ivs, [2]uint64{seq, seq})
		}
		return
	}
	i := sort.Search(n, func(i int) bool { return s.ivs[i][1]+1 >= seq }) // first interval that seq touches or precedes
	switch {
	case i < n && s.ivs[i][0] <= seq && seq <= s.ivs[i][1]:
		return
	case i < n && seq+1 == s.ivs[i][0]:
		s.ivs[i][0] = seq
	case i < n && seq == s.ivs[i][1]+1:
		s.ivs[i][1] = seq
	default:
		s.ivs = append(s.ivs, [2]uint64{})
		copy(s.ivs[i+1:], s.ivs[i:])
		s.ivs[i] = [2]uint64{seq, seq}
	}
	// Merge with the neighbours it now touches.
	if i > 0 && s.ivs[i-1][1]+1 >= s.ivs[i][0] {
		s.ivs[i-1][1] = max(s.ivs[i-1][1], s.ivs[i][1])
		s.ivs = append(s.ivs[:i], s.ivs[i+1:]...)
		i--
	}
	if i+1 < len(s.ivs) && s.ivs[i][1]+1 >= s.ivs[i+1][0] {
		s.ivs[i][1] = max(s.ivs[i][1], s.ivs[i+1][1])
		s.ivs = append(s.ivs[:i+1], s.ivs[i+2:]...)
	}
}

func (s *seqSet) has(seq uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := sort.Search(len(s.ivs), func(i int) bool { return s.ivs[i][1] >= seq })
	return i < len(s.ivs) && s.ivs[i][0] <= seq
}

// merge adds every interval of other (another replica's view).
func (s *seqSet) merge(other [][2]uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	all := append(append([][2]uint64{}, s.ivs...), other...)
	sort.Slice(all, func(a, b int) bool { return all[a][0] < all[b][0] })
	out := all[:0]
	for _, x := range all {
		if x[0] == 0 || x[1] < x[0] {
			continue
		}
		if len(out) > 0 && out[len(out)-1][1]+1 >= x[0] {
			out[len(out)-1][1] = max(out[len(out)-1][1], x[1])
		} else {
			out = append(out, x)
		}
	}
	s.ivs = out
}
