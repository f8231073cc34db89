package consumer

import (
	"math/rand/v2"
	"testing"
)

func TestSeqSetMatchesAMap(t *testing.T) {
	var s seqSet
	want := map[uint64]bool{}
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 5000 {
		q := uint64(r.IntN(3000) + 1)
		if i%3 == 0 {
			q = uint64(i) + 1 // runs, as applied events mostly are
		}
		s.add(q)
		want[q] = true
	}
	for q := uint64(0); q < 6000; q++ {
		if s.has(q) != want[q] {
			t.Fatalf("has(%d) = %v, want %v", q, s.has(q), want[q])
		}
	}
	for i := 1; i < len(s.ivs); i++ {
		if s.ivs[i-1][1]+1 >= s.ivs[i][0] {
			t.Fatalf("intervals %v and %v touch", s.ivs[i-1], s.ivs[i])
		}
	}
	var m seqSet
	m.merge(s.ivs)
	m.merge([][2]uint64{{1, 1 << 22}})
	if !m.has(1<<22) || !m.has(7) || len(m.ivs) != 1 {
		t.Fatalf("merge: %v", m.ivs[:min(3, len(m.ivs))])
	}
}
