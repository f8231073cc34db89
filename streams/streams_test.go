package streams_test

import (
	"context"
	"testing"
	"testing/fstest"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/fieldstream/fieldstream/streams"
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
			got, err := streams.Load(tt.files)
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

// TestDefinitions: every name this package exports has its file, and the files parse.
func TestDefinitions(t *testing.T) {
	for _, name := range []string{streams.Events, streams.DeadLetters, streams.Advisories} {
		if _, err := streams.Definition(name); err != nil {
			t.Error(err)
		}
	}
}

func TestApplyIsIdempotentAndKeepsData(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	js := runJetStream(t)
	cfg := jetstream.StreamConfig{Name: "S", Subjects: []string{"s.>"}, Storage: jetstream.FileStorage, Duplicates: time.Minute}
	apply := func() error { _, err := streams.ApplyConfigs(ctx, js, []jetstream.StreamConfig{cfg}); return err }
	if err := apply(); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "s.1", []byte("kept")); err != nil {
		t.Fatal(err)
	}
	if err := apply(); err != nil {
		t.Fatalf("second apply of the same definition: %v", err)
	}
	cfg.Duplicates = 15 * time.Minute
	if err := apply(); err != nil {
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
	if err := apply(); err == nil {
		t.Fatal("a storage change was applied; JetStream cannot do that in place and must refuse")
	}
}

func TestApplyWithOptions(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	js := runJetStream(t)
	names, err := streams.Apply(ctx, js, streams.Options{DuplicateWindow: time.Hour, MaxAge: 48 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 3 {
		t.Errorf("applied %v, want the 3 streams", names)
	}
	s, err := js.Stream(ctx, streams.Events)
	if err != nil {
		t.Fatal(err)
	}
	if c := s.CachedInfo().Config; c.Duplicates != time.Hour || c.MaxAge != 48*time.Hour {
		t.Errorf("EVENTS duplicates %v max age %v, want 1h and 48h", c.Duplicates, c.MaxAge)
	}
	if _, err := streams.ApplyBuckets(ctx, js, 0); err != nil {
		t.Fatal(err)
	}
	for _, b := range streams.Buckets() {
		if _, err := streams.OpenBucket(ctx, js, b.Bucket); err != nil {
			t.Error(err)
		}
	}
	if _, err := streams.OpenBucket(ctx, js, "nope"); err == nil {
		t.Error("OpenBucket of an undefined bucket succeeded")
	}
}

func runJetStream(t *testing.T) jetstream.JetStream {
	t.Helper()
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}
