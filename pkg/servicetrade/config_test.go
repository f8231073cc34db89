package servicetrade_test

import (
	"testing"
	"time"

	"github.com/fieldstream/fieldstream/pkg/servicetrade"
)

func TestConfigValidate(t *testing.T) {
	ok := servicetrade.Config{ClientID: "id", ClientSecret: "secret"}
	with := func(edit func(*servicetrade.Config)) servicetrade.Config {
		c := ok
		edit(&c)
		return c
	}
	tests := []struct {
		name    string
		cfg     servicetrade.Config
		wantErr bool
	}{
		{name: "minimal", cfg: ok},
		{name: "everything", cfg: with(func(c *servicetrade.Config) {
			c.BaseURL, c.Timeout, c.RefreshBefore = "http://127.0.0.1:9/api", time.Second, time.Minute
		})},
		{name: "no client id", cfg: with(func(c *servicetrade.Config) { c.ClientID = "" }), wantErr: true},
		{name: "no secret", cfg: with(func(c *servicetrade.Config) { c.ClientSecret = "" }), wantErr: true},
		{name: "relative base URL", cfg: with(func(c *servicetrade.Config) { c.BaseURL = "/api" }), wantErr: true},
		{name: "ftp base URL", cfg: with(func(c *servicetrade.Config) { c.BaseURL = "ftp://example.com/api" }), wantErr: true},
		{name: "negative timeout", cfg: with(func(c *servicetrade.Config) { c.Timeout = -time.Second }), wantErr: true},
		{name: "negative refresh", cfg: with(func(c *servicetrade.Config) { c.RefreshBefore = -time.Second }), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.cfg.Validate(); (err != nil) != tt.wantErr {
				t.Fatalf("Validate() = %v, wantErr %v", err, tt.wantErr)
			}
			if _, err := servicetrade.New(tt.cfg); (err != nil) != tt.wantErr {
				t.Fatalf("New() error = %v, wantErr %v", err, tt.wantErr)
			}
		})
	}
}
