package consumer

import (
	"context"
	"fmt"
	"runtime/debug"

	"github.com/fieldstream/fieldstream/pkg/failure"
)

// Recover turns a panic in the handler into a permanent error for every message of the
// batch, stack trace included, so a poison event is dead-lettered instead of crashing every
// replica in turn.
func Recover() Middleware {
	return func(next BatchHandler) BatchHandler {
		return func(ctx context.Context, batch []*Message) (errs []error) {
			defer func() {
				if r := recover(); r != nil {
					err := failure.Permanent(fmt.Errorf("panic: %v\n%s", r, debug.Stack()))
					errs = make([]error, len(batch))
					for i := range errs {
						errs[i] = err
					}
				}
			}()
			return next(ctx, batch)
		}
	}
}
