package consumer_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/fieldstream/fieldstream/pkg/consumer"
	"github.com/fieldstream/fieldstream/pkg/failure"
)

func TestRecover(t *testing.T) {
	tests := []struct {
		name    string
		handler consumer.BatchHandler
		want    []error
		// wantPanic: every message gets a permanent error naming the panic and where it was.
		wantPanic bool
	}{
		{name: "a panic", handler: func(context.Context, []*consumer.Message) []error { panicInHandler(); return nil }, wantPanic: true},
		{name: "no panic: outcomes pass through", handler: func(context.Context, []*consumer.Message) []error {
			return []error{nil, errUnavailable, consumer.ErrAlreadyApplied}
		}, want: []error{nil, errUnavailable, consumer.ErrAlreadyApplied}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := consumer.Recover()(tt.handler)(context.Background(), make([]*consumer.Message, 3))
			if len(errs) != 3 {
				t.Fatalf("%d errors for 3 messages", len(errs))
			}
			for i, err := range errs {
				switch {
				case tt.wantPanic:
					if !failure.IsPermanent(err) || !strings.Contains(err.Error(), "panic: poison event") || !strings.Contains(err.Error(), "panicInHandler") {
						t.Errorf("message %d: %v, want a permanent error with the panic and its stack", i, err)
					}
				case !errors.Is(err, tt.want[i]):
					t.Errorf("message %d: %v, want %v", i, err, tt.want[i])
				}
			}
		})
	}
}

func panicInHandler() { panic("poison event") }
