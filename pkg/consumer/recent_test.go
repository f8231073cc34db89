package consumer

import "testing"

func TestRecentSetEvictsOldest(t *testing.T) {
	r := newRecentSet(2)
	a, b, c := digest("a"), digest("b"), digest("c")
	r.add(a)
	r.add(b)
	r.add(a) // already there: no eviction, no reordering
	if !r.has(a) || !r.has(b) {
		t.Fatal("lost an id before the set was full")
	}
	r.add(c)
	if r.has(a) || !r.has(b) || !r.has(c) {
		t.Fatalf("after a third id: a %v b %v c %v, want the oldest (a) evicted", r.has(a), r.has(b), r.has(c))
	}
}
