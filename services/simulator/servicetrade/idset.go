package servicetrade

import "math/rand/v2"

// idSet is a set of ids with O(1) add, remove and uniform random pick. Picking from a slice
// rather than ranging over a map keeps the simulation deterministic for a seed.
type idSet struct {
	ids []int64
	pos map[int64]int
}

func (s *idSet) add(id int64) {
	if s.pos == nil {
		s.pos = make(map[int64]int)
	}
	if _, ok := s.pos[id]; ok {
		return
	}
	s.pos[id] = len(s.ids)
	s.ids = append(s.ids, id)
}

func (s *idSet) remove(id int64) {
	i, ok := s.pos[id]
	if !ok {
		return
	}
	last := s.ids[len(s.ids)-1]
	s.ids[i] = last
	s.pos[last] = i
	s.ids = s.ids[:len(s.ids)-1]
	delete(s.pos, id)
}

func (s *idSet) len() int { return len(s.ids) }

// pick returns a random member, or false if the set is empty.
func (s *idSet) pick(rng *rand.Rand) (int64, bool) {
	if len(s.ids) == 0 {
		return 0, false
	}
	return s.ids[rng.IntN(len(s.ids))], true
}
