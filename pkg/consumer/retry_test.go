package consumer_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fieldstream/fieldstream/pkg/consumer"
	"github.com/fieldstream/fieldstream/pkg/failure"
)

func TestRetry(t *testing.T) {
	throttled := failure.Transient(errors.New("429"), time.Hour)
	tests := []struct {
		name string
		// fail is the error of the message under test at its try'th attempt (from 1).
		fail      func(try int) error
		cancelled bool // ctx has ended
		want      error
		wantTries int // 0: more than one, as many as the budget allows
	}{
		{name: "transient until the third try", fail: func(try int) error {
			if try < 3 {
				return errUnavailable
			}
			return nil
		}, wantTries: 3},
		{name: "always transient: handed back when the budget is spent", fail: func(int) error { return errUnavailable }, want: errUnavailable},
		{name: "a Retry-After beyond the budget", fail: func(int) error { return throttled }, want: throttled, wantTries: 1},
		{name: "permanent", fail: func(int) error { return errRejected }, want: errRejected, wantTries: 1},
		{name: "already applied", fail: func(int) error { return fmt.Errorf("seq 7: %w", consumer.ErrAlreadyApplied) }, want: consumer.ErrAlreadyApplied, wantTries: 1},
		{name: "superseded", fail: func(int) error { return consumer.ErrSuperseded }, want: consumer.ErrSuperseded, wantTries: 1},
		{name: "ctx ended", fail: func(int) error { return errUnavailable }, cancelled: true, want: errUnavailable, wantTries: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tt.cancelled {
				cancel()
			}
			subject, bystander := &progressMsg{}, &progressMsg{}
			batch := []*consumer.Message{{Msg: subject}, {Msg: bystander}}
			tries := map[jetstream.Msg]int{}
			handler := func(_ context.Context, batch []*consumer.Message) []error {
				errs := make([]error, len(batch))
				for i, m := range batch {
					tries[m.Msg]++
					if m.Msg == subject {
						errs[i] = tt.fail(tries[m.Msg])
					}
				}
				return errs
			}
			retry := consumer.Retry(consumer.RetryConfig{InitialInterval: time.Millisecond, MaxInterval: 2 * time.Millisecond, Budget: 50 * time.Millisecond})
			errs := retry(handler)(ctx, batch)
			if !errors.Is(errs[0], tt.want) {
				t.Errorf("error %v, want %v", errs[0], tt.want)
			}
			if n := tries[subject]; n != tt.wantTries && (tt.wantTries != 0 || n < 2) {
				t.Errorf("tried %d times, want %d (0: more than once)", n, tt.wantTries)
			}
			if errs[1] != nil || tries[bystander] != 1 {
				t.Errorf("the message that applied at once: error %v, tried %d times", errs[1], tries[bystander])
			}
			// Every wait for a retry tells JetStream the message is in progress; a message that
			// waits for nothing is not reported.
			retries := int32(tries[subject] - 1)
			if n := subject.inProgress.Load(); n < retries || (tt.wantTries == 1 && !tt.cancelled && n != 0) {
				t.Errorf("reported in progress %d times for %d retries", n, retries)
			}
		})
	}
}

// progressMsg is a delivery that notes InProgress, all Retry asks of it.
type progressMsg struct {
	jetstream.Msg // nil: any other method panics
	inProgress    atomic.Int32
}

func (m *progressMsg) InProgress() error { m.inProgress.Add(1); return nil }
