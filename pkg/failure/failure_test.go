package failure_test

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/fieldstream/fieldstream/pkg/failure"
)

func TestFromHTTP(t *testing.T) {
	tests := []struct {
		status     int
		retryAfter string
		want       failure.Class
		wantAfter  time.Duration
	}{
		{400, "", failure.ClassPermanent, 0},
		{401, "", failure.ClassPermanent, 0},
		{404, "", failure.ClassPermanent, 0},
		{410, "", failure.ClassPermanent, 0},
		{422, "", failure.ClassPermanent, 0},
		{408, "", failure.ClassTransient, 0},
		{429, "7", failure.ClassTransient, 7 * time.Second},
		{500, "", failure.ClassTransient, 0},
		{503, "2", failure.ClassTransient, 2 * time.Second},
		{503, "soon", failure.ClassTransient, 0},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.status, tt.retryAfter), func(t *testing.T) {
			h := http.Header{}
			if tt.retryAfter != "" {
				h.Set("Retry-After", tt.retryAfter)
			}
			err := fmt.Errorf("wrapped: %w", failure.FromHTTP("GET", "http://x/y", tt.status, h, "body"))
			if got := failure.ClassOf(err); got != tt.want {
				t.Errorf("class %s, want %s", got, tt.want)
			}
			if got := failure.RetryAfterOf(err); got != tt.wantAfter {
				t.Errorf("retry after %s, want %s", got, tt.wantAfter)
			}
			if failure.StatusOf(err) != tt.status {
				t.Errorf("status %d", failure.StatusOf(err))
			}
		})
	}
}

func TestUnclassifiedIsTransient(t *testing.T) {
	if failure.ClassOf(errors.New("connection reset")) != failure.ClassTransient {
		t.Fatal("unclassified error is not transient")
	}
	if failure.Permanent(nil) != nil || failure.Transient(nil, 0) != nil {
		t.Fatal("classifying nil must stay nil")
	}
	// The outermost classification wins.
	err := failure.Permanent(failure.Transient(errors.New("x"), time.Second))
	if !failure.IsPermanent(err) {
		t.Fatal("outer Permanent lost")
	}
}
