package consumer

import (
	"testing"

	"github.com/nats-io/nats.go"
)

func TestCarriedHeader(t *testing.T) {
	stored := nats.Header{
		"Nats-Msg-Id":         {"st:demo:job:1:updated:1700000000"},
		"Nats-Batch-Id":       {"b1"},
		"Nats-Batch-Sequence": {"3"},
		"Nats-Batch-Commit":   {"1"},
		"Nats-Sequence":       {"42"},
		"Content-Type":        {"application/cloudevents+json"},
		"Fs-Origin":           {"poll"},
	}
	got := CarriedHeader(stored)
	want := nats.Header{"Content-Type": {"application/cloudevents+json"}, "Fs-Origin": {"poll"}}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if got.Get(k) != v[0] {
			t.Errorf("%s: got %q, want %q", k, got.Get(k), v[0])
		}
	}
	got.Set("Nats-Msg-Id", "copy")
	if stored.Get("Nats-Msg-Id") == "copy" {
		t.Fatal("the copy shares its map with the original")
	}
}
