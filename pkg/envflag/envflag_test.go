package envflag_test

import (
	"flag"
	"io"
	"testing"
	"time"

	"github.com/fieldstream/fieldstream/pkg/envflag"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		env      map[string]string
		wantAddr string
		wantURL  string
		wantWait time.Duration
		wantErr  bool
	}{
		{name: "defaults", wantAddr: ":8080", wantURL: "", wantWait: time.Second},
		{name: "env fills", env: map[string]string{"FS_HTTP_ADDR": ":9", "FS_WAIT": "3s"}, wantAddr: ":9", wantWait: 3 * time.Second},
		{name: "flag beats env", args: []string{"-http-addr", ":1"}, env: map[string]string{"FS_HTTP_ADDR": ":9"}, wantAddr: ":1", wantWait: time.Second},
		{name: "extra name", env: map[string]string{"NATS_URL": "nats://x:4222"}, wantAddr: ":8080", wantURL: "nats://x:4222", wantWait: time.Second},
		{name: "prefixed beats extra", env: map[string]string{"NATS_URL": "nats://x", "FS_NATS_URL": "nats://y"}, wantAddr: ":8080", wantURL: "nats://y", wantWait: time.Second},
		{name: "bad env value", env: map[string]string{"FS_WAIT": "soon"}, wantErr: true},
		{name: "unknown flag", args: []string{"-nope"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := flag.NewFlagSet("x", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			addr := fs.String("http-addr", ":8080", "listen address")
			url := fs.String("nats-url", "", "server")
			wait := fs.Duration("wait", time.Second, "wait")
			err := envflag.Parse(fs, tt.args, "FS", map[string]string{"nats-url": "NATS_URL"}, func(k string) string { return tt.env[k] })
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			if *addr != tt.wantAddr || *url != tt.wantURL || *wait != tt.wantWait {
				t.Errorf("got %q %q %v, want %q %q %v", *addr, *url, *wait, tt.wantAddr, tt.wantURL, tt.wantWait)
			}
		})
	}
}
