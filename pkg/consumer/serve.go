package consumer

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"syscall"
	"time"

	"github.com/oklog/run"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
)

// Serve runs a consumer service: the pipeline, an HTTP server on addr with /metrics (from
// reg) and /healthz, until ctx ends or the process gets SIGINT or SIGTERM. It then stops
// the HTTP server and drains the pipeline (see Consumer.Run) before it returns; a signal is
// a clean stop and returns nil.
func Serve(ctx context.Context, p *Pipeline, addr string, reg *prometheus.Registry, log zerolog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	log.Info().Str("consumer", p.cfg.Name).Str("metrics", "http://"+ln.Addr().String()+"/metrics").Msg("consuming")

	var g run.Group
	g.Add(run.SignalHandler(ctx, os.Interrupt, syscall.SIGTERM))
	g.Add(func() error { return srv.Serve(ln) }, func(error) { _ = srv.Close() })
	pctx, stop := context.WithCancel(context.Background())
	g.Add(func() error { return p.Run(pctx) }, func(error) { stop() })
	err = g.Run()
	if errors.Is(err, run.ErrSignal) {
		return nil
	}
	return err
}
