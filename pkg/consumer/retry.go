package consumer

import (
	"context"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/fieldstream/fieldstream/pkg/failure"
)

// RetryConfig bounds in-process retries; zero fields take the defaults in their comments.
type RetryConfig struct {
	// InitialInterval is the first backoff (default 200 ms); it grows to MaxInterval
	// (default 5 s), jittered by ±50%.
	InitialInterval time.Duration
	MaxInterval     time.Duration
	// Budget bounds the time spent retrying one batch in process (default 15 s); what is
	// still failing then is handed back to JetStream (NakWithDelay). Keep it well under
	// the consumer's AckWait; the middleware also reports progress while it waits.
	Budget time.Duration
}

func (c RetryConfig) withDefaults() RetryConfig {
	if c.InitialInterval == 0 {
		c.InitialInterval = 200 * time.Millisecond
	}
	if c.MaxInterval == 0 {
		c.MaxInterval = 5 * time.Second
	}
	if c.Budget == 0 {
		c.Budget = 15 * time.Second
	}
	return c
}

// Retry retries the messages whose error is transient, in process, with jittered
// exponential backoff, for at most the budget. A Retry-After longer than what is left of
// the budget ends the retries at once. While it waits it tells JetStream the messages are
// in progress, so their AckWait does not run out. Permanent errors, successes and messages
// kept from the handler (ErrAlreadyApplied, ErrSuperseded) pass through untouched; ctx
// ending stops the retries.
func Retry(cfg RetryConfig) Middleware {
	cfg = cfg.withDefaults()
	return func(next BatchHandler) BatchHandler {
		return func(ctx context.Context, batch []*Message) []error {
			errs := next(ctx, batch)
			b := backoff.NewExponentialBackOff()
			b.InitialInterval, b.MaxInterval, b.MaxElapsedTime = cfg.InitialInterval, cfg.MaxInterval, 0
			b.Reset()
			deadline := time.Now().Add(cfg.Budget)
			for {
				var again []int
				wait := time.Duration(0)
				for i, err := range errs {
					if err != nil && !failure.IsPermanent(err) && !skipped(err) {
						again = append(again, i)
						wait = max(wait, failure.RetryAfterOf(err))
					}
				}
				if len(again) == 0 {
					return errs
				}
				if wait == 0 {
					wait = b.NextBackOff()
				}
				if time.Now().Add(wait).After(deadline) {
					return errs
				}
				for _, i := range again {
					_ = batch[i].Msg.InProgress()
				}
				t := time.NewTimer(wait)
				select {
				case <-ctx.Done():
					t.Stop()
					return errs
				case <-t.C:
				}
				passOn(ctx, next, batch, again, errs)
			}
		}
	}
}
