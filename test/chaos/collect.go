package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fieldstream/fieldstream/pkg/consumer"
	"github.com/fieldstream/fieldstream/pkg/jsonhttp"
)

// HTTPJSON sends in (if not nil) as JSON to rawURL and decodes a 2xx reply into out (if
// not nil); any other status is an error. The simulators' admin endpoints speak it.
func HTTPJSON(ctx context.Context, method, rawURL string, in, out any) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return err
	}
	c, err := jsonhttp.New(jsonhttp.Config{Name: "chaos", BaseURL: u.Scheme + "://" + u.Host, Timeout: 30 * time.Second})
	if err != nil {
		return err
	}
	return c.Do(ctx, method, u.RequestURI(), in, out)
}

// readStream calls fn with every message of stream, in order, through an ordered consumer.
func readStream(ctx context.Context, js jetstream.JetStream, stream string, fn func(jetstream.Msg) error) error {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return err
	}
	if info.State.Msgs == 0 {
		return nil
	}
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return err
	}
	for {
		batch, err := c.Fetch(500, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return err
		}
		n := 0
		for m := range batch.Messages() {
			n++
			if err := fn(m); err != nil {
				return err
			}
			meta, err := m.Metadata()
			if err != nil {
				return err
			}
			if meta.Sequence.Stream >= info.State.LastSeq {
				return nil
			}
		}
		if err := batch.Error(); err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("%s: no message within 5 s before sequence %d", stream, info.State.LastSeq)
		}
	}
}

// storedEvents counts EVENTS' messages per Nats-Msg-Id.
func storedEvents(ctx context.Context, js jetstream.JetStream) (map[string]int, error) {
	stored := map[string]int{}
	err := readStream(ctx, js, "EVENTS", func(m jetstream.Msg) error {
		id := m.Headers().Get(jetstream.MsgIDHeader)
		if id == "" {
			return errors.New("EVENTS holds a message without Nats-Msg-Id")
		}
		stored[id]++
		return nil
	})
	return stored, err
}

// deadLetters maps every event id in DLQ to the consumers that dead-lettered it, and
// counts DLQ's messages.
func deadLetters(ctx context.Context, js jetstream.JetStream) (map[string][]string, int, error) {
	out := map[string][]string{}
	n := 0
	err := readStream(ctx, js, "DLQ", func(m jetstream.Msg) error {
		n++
		var ce struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(m.Data(), &ce); err != nil || ce.ID == "" {
			return fmt.Errorf("dead letter %s: no CloudEvent id: %v", m.Subject(), err)
		}
		out[ce.ID] = append(out[ce.ID], m.Headers().Get(consumer.HeaderDLQConsumer))
		return nil
	})
	return out, n, err
}
