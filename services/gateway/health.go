package gateway

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

type health struct {
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
}

// serveHealth answers 200 while the process serves HTTP: liveness only.
func (g *Gateway) serveHealth(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, health{Status: "ok"})
}

// serveReady answers 200 only when NATS is connected and every required stream answers
// within a second; otherwise 503 with the reason, so a load balancer stops sending.
func (g *Gateway) serveReady(w http.ResponseWriter, r *http.Request) {
	if err := g.ready(r.Context()); err != nil {
		w.Header().Set("Retry-After", "1")
		writeJSON(w, http.StatusServiceUnavailable, health{Status: "not ready", Reason: err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, health{Status: "ready"})
}

func (g *Gateway) ready(ctx context.Context) error {
	if !g.cfg.JetStream.Conn().IsConnected() {
		return fmt.Errorf("not connected to NATS (%s)", g.cfg.JetStream.Conn().Status())
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	for _, name := range g.cfg.Streams {
		if _, err := g.cfg.JetStream.Stream(ctx, name); err != nil {
			return fmt.Errorf("stream %s: %v", name, err)
		}
	}
	return nil
}
