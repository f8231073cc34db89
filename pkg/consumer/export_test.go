package consumer

import (
	"context"

	"github.com/nats-io/nats.go/jetstream"
)

// ReadMessage lets the external tests build a Message as the Consumer hands it to its
// handler: metadata and id read, envelope undecoded.
var ReadMessage = readMessage

// ReadReplayMessage builds the Message of a delivery of a replay consumer of w.
func ReadReplayMessage(msg jetstream.Msg, w ReplayWindow) (*Message, error) {
	return source{name: ReplayName(w.Target, 1), replay: &w}.read(msg)
}

// NewRedrive is the redrive consumer of cfg, running handler.
func NewRedrive(ctx context.Context, js jetstream.JetStream, cfg Config, handler BatchHandler) (*Consumer, error) {
	cfg.setDefaults()
	return newRedrive(ctx, js, cfg, handler)
}
