package harness

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// StoredIDs reads every message of stream through an ordered consumer and returns how many
// times each Nats-Msg-Id occurs in it.
func StoredIDs(ctx context.Context, js jetstream.JetStream, stream string) (map[string]int, error) {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, err
	}
	ids := map[string]int{}
	if info.State.Msgs == 0 {
		return ids, nil
	}
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return nil, err
	}
	it, err := c.Messages()
	if err != nil {
		return nil, err
	}
	defer it.Stop()
	for {
		m, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", stream, err)
		}
		ids[m.Headers().Get(jetstream.MsgIDHeader)]++
		meta, err := m.Metadata()
		if err != nil {
			return nil, err
		}
		if meta.Sequence.Stream >= info.State.LastSeq {
			return ids, nil
		}
	}
}

// Ledger balances what the gateway answered against what the stream holds.
type Ledger struct {
	Requests int
	Acked    int      // distinct events some request carrying them was answered 2xx for
	Refused  int      // answers 503 with Retry-After
	Lost     []string // answered 2xx, not in the stream: a false 2xx
	Doubled  []string // in the stream more than once
	// Unexpected are ids in the stream that no request carried.
	Unexpected []string
	// Wrong are answers that break the contract under faults: anything other than a 2xx
	// or a 503 with Retry-After, including no answer at all.
	Wrong []Answer
}

// Reconcile builds the ledger of answers against stored (from StoredIDs).
func Reconcile(answers []Answer, stored map[string]int) Ledger {
	var l Ledger
	sent, acked := map[string]bool{}, map[string]bool{}
	for _, a := range answers {
		l.Requests++
		for _, id := range a.IDs {
			sent[id] = true
		}
		switch {
		case a.OK():
			for _, id := range a.IDs {
				if !acked[id] {
					acked[id] = true
					if stored[id] == 0 {
						l.Lost = append(l.Lost, id)
					}
				}
			}
		case a.Status == http.StatusServiceUnavailable && a.RetryAfter != "":
			l.Refused++
		default:
			l.Wrong = append(l.Wrong, a)
		}
	}
	l.Acked = len(acked)
	for id, n := range stored {
		if n > 1 {
			l.Doubled = append(l.Doubled, id)
		}
		if !sent[id] {
			l.Unexpected = append(l.Unexpected, id)
		}
	}
	return l
}

// Balanced reports whether nothing acknowledged was lost or doubled, nothing appeared
// that was never sent, and every answer kept the contract.
func (l Ledger) Balanced() bool {
	return len(l.Lost) == 0 && len(l.Doubled) == 0 && len(l.Unexpected) == 0 && len(l.Wrong) == 0
}

// String summarizes the ledger, with a few examples of what is off.
func (l Ledger) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "requests=%d acked=%d refused_503=%d lost=%d doubled=%d unexpected=%d wrong_answers=%d",
		l.Requests, l.Acked, l.Refused, len(l.Lost), len(l.Doubled), len(l.Unexpected), len(l.Wrong))
	for i, id := range l.Lost {
		if i == 3 {
			break
		}
		fmt.Fprintf(&b, "\n  lost %s", id)
	}
	for i, a := range l.Wrong {
		if i == 5 {
			break
		}
		fmt.Fprintf(&b, "\n  wrong answer: status=%d retry-after=%q err=%v after %s body=%q",
			a.Status, a.RetryAfter, a.Err, a.Answered.Sub(a.Sent).Round(time.Millisecond), a.Body)
	}
	return b.String()
}
