package simulator

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fieldstream/fieldstream/services/simulator/servicetrade"
)

// TestStandardSenderSpreadsAttempts: with several URLs (one hook on several gateways), a
// retry goes to the next one, and the record says when the answer came.
func TestStandardSenderSpreadsAttempts(t *testing.T) {
	var down, up atomic.Int32
	first := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		down.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer first.Close()
	second := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		up.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer second.Close()
	acct, err := servicetrade.NewAccount(servicetrade.AccountConfig{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewStandardSender(StandardSenderConfig{URL: first.URL, MoreURLs: []string{second.URL}, Secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
		RetryDelay: time.Millisecond}, acct, func(DeliveryRecord) {})
	if err != nil {
		t.Fatal(err)
	}
	d, err := s.next(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	rec := s.deliver(context.Background(), d)
	if rec.Outcome != OutcomeDelivered || rec.Attempts != 2 || rec.Status != http.StatusNoContent {
		t.Fatalf("record %+v, want delivered at the second attempt", rec)
	}
	if down.Load() != 1 || up.Load() != 1 {
		t.Errorf("%d attempts at the first URL, %d at the second; want one each", down.Load(), up.Load())
	}
	if rec.Answered.Before(before) {
		t.Errorf("answered %s, before the delivery began", rec.Answered)
	}
}
