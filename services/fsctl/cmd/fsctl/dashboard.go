package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/fieldstream/fieldstream/services/fsctl/dashboard"
)

type dashboardCmd struct {
	Addr string `default:"127.0.0.1:8090" help:"listen address (keep it where only operators reach it)"`
}

// Run serves the dashboard, and beside it /metrics (the JetStream side of fieldstream, for
// Prometheus), /healthz (the process serves) and /readyz (NATS connected).
func (c dashboardCmd) Run(ctx context.Context, e *env) error {
	log := zerolog.New(e.stderr).With().Timestamp().Str("service", "dashboard").Logger().Level(zerolog.WarnLevel)
	dash, err := dashboard.New(e.js, dashboard.Options{Logger: log})
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		dash.Metrics(dashboard.MetricsOptions{}))
	mux := http.NewServeMux()
	mux.Handle("/dashboard/", dash)
	mux.Handle("GET /{$}", http.RedirectHandler("/dashboard/", http.StatusFound))
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !e.js.Conn().IsConnected() {
			http.Error(w, "not connected to NATS", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		return err
	}
	go func() { _ = dash.Run(ctx) }() // the charts' last hour, page open or not
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	fmt.Fprintf(e.stderr, "dashboard: http://%s/dashboard/, /metrics (Ctrl-C stops)\n", ln.Addr())
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
