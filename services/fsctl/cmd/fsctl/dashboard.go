package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/fieldstream/fieldstream/services/fsctl/dashboard"
)

type dashboardCmd struct {
	Addr string `default:"127.0.0.1:8090" help:"listen address (keep it where only operators reach it)"`
}

func (c dashboardCmd) Run(ctx context.Context, e *env) error {
	dash, err := dashboard.New(e.js, dashboard.Options{})
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/dashboard/", dash)
	mux.Handle("GET /{$}", http.RedirectHandler("/dashboard/", http.StatusFound))
	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { <-ctx.Done(); _ = srv.Close() }()
	fmt.Fprintf(e.stderr, "dashboard: http://%s/dashboard/ (Ctrl-C stops)\n", ln.Addr())
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
