package gateway

import (
	"testing"

	"github.com/fieldstream/fieldstream/pkg/event"
)

func TestSeenIDsForgetTheOldestGeneration(t *testing.T) {
	s := newSeenIDs(2)
	ids := func(names ...string) []event.Message {
		out := make([]event.Message, len(names))
		for i, n := range names {
			out[i] = event.Message{ID: n}
		}
		return out
	}
	steps := []struct {
		add  []string
		seen bool
	}{
		{add: []string{"a", "b"}, seen: false},
		{add: []string{"c"}, seen: false}, // a and b move to the previous generation
		{add: []string{"a"}, seen: true},  // still remembered there
		{add: []string{"d", "e"}, seen: false},
		{add: []string{"b"}, seen: false}, // two generations on: forgotten
		{add: []string{"x", "x"}, seen: true},
	}
	for i, st := range steps {
		if got := s.addAll(ids(st.add...)); got != st.seen {
			t.Errorf("step %d: add %v: seen %v, want %v", i, st.add, got, st.seen)
		}
	}
}
