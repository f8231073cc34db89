package ops

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ReadOrdered reads stream in order with an ordered consumer of cfg, fetching 500 messages
// at a time, and calls fn for each until fn says stop, the stream has nothing more pending,
// or ctx ends. (An ordered consumer's Next asks the server once per message, far too slow
// for a window of many thousands.)
func ReadOrdered(ctx context.Context, stream jetstream.Stream, cfg jetstream.OrderedConsumerConfig, fn func(jetstream.Msg, *jetstream.MsgMetadata) (more bool, err error)) error {
	oc, err := stream.OrderedConsumer(ctx, cfg)
	if err != nil {
		return err
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		batch, err := oc.Fetch(500, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			return err
		}
		n := 0
		for m := range batch.Messages() {
			n++
			meta, err := m.Metadata()
			if err != nil {
				return err
			}
			more, err := fn(m, meta)
			if err != nil || !more {
				return err
			}
			if meta.NumPending == 0 {
				return nil
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, jetstream.ErrNoMessages) {
			return err
		}
		if n == 0 {
			return nil
		}
	}
}
