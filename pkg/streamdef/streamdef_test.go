package streamdef_test

import (
	"context"
	"testing"
	"testing/fstest"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fieldstream/fieldstream/pkg/natstest"
	"github.com/fieldstream/fieldstream/pkg/streamdef"
)

func TestLoad(t *testing.T) {
	tests := []struct {
		name    string
		files   fstest.MapFS
		want    []string
		wantErr bool
	}{
		{name: "sorted by file", files: fstest.MapFS{"b.json": {Data: []byte(`{"name":"B"}`)}, "a.json": {Data: []byte(`{"name":"A"}`)}, "README.md": {Data: []byte("x")}}, want: []string{"A", "B"}},
		{name: "no name", files: fstest.MapFS{"a.json": {Data: []byte(`{"subjects":["x"]}`)}}, wantErr: true},
		{name: "bad json", files: fstest.MapFS{"a.json": {Data: []byte(`{`)}}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := streamdef.Load(tt.files)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d definitions, want %d", len(got), len(tt.want))
			}
			for i := range got {
				if got[i].Name != tt.want[i] {
					t.Errorf("[%d] = %s, want %s", i, got[i].Name, tt.want[i])
				}
			}
		})
	}
}

func TestApplyIsIdempotentAndKeepsData(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, js := natstest.Connect(t, natstest.RunServer(t))
	cfg := jetstream.StreamConfig{Name: "S", Subjects: []string{"s.>"}, Storage: jetstream.FileStorage, Duplicates: time.Minute}
	if err := streamdef.Apply(ctx, js, []jetstream.StreamConfig{cfg}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "s.1", []byte("kept")); err != nil {
		t.Fatal(err)
	}
	if err := streamdef.Apply(ctx, js, []jetstream.StreamConfig{cfg}); err != nil {
		t.Fatalf("second apply of the same definition: %v", err)
	}
	cfg.Duplicates = 15 * time.Minute
	if err := streamdef.Apply(ctx, js, []jetstream.StreamConfig{cfg}); err != nil {
		t.Fatalf("apply of a changed definition: %v", err)
	}
	s, err := js.Stream(ctx, "S")
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.Duplicates != 15*time.Minute || info.State.Msgs != 1 {
		t.Fatalf("after update: duplicates %v msgs %d, want 15m and 1", info.Config.Duplicates, info.State.Msgs)
	}
	cfg.Storage = jetstream.MemoryStorage
	if err := streamdef.Apply(ctx, js, []jetstream.StreamConfig{cfg}); err == nil {
		t.Fatal("a storage change was applied; JetStream cannot do that in place and must refuse")
	}
}
