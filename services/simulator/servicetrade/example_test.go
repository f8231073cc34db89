package servicetrade_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/fieldstream/fieldstream/services/simulator/servicetrade"
)

// A simulated account's changes, sent to a hook that fails once. In a service, Run would
// send them at EventsPerSecond until its context ends.
func Example() {
	calls := 0
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls++; calls == 1 {
			w.WriteHeader(http.StatusBadGateway)
		}
	}))
	defer hook.Close()

	account, err := servicetrade.NewAccount(servicetrade.AccountConfig{Seed: 1})
	if err != nil {
		panic(err)
	}
	sender, err := servicetrade.NewSender(servicetrade.SenderConfig{
		URL:        hook.URL + "/hooks/demo/servicetrade/dev-token",
		RetryDelay: 10 * time.Millisecond,
	}, account)
	if err != nil {
		panic(err)
	}

	now := time.Now()
	res := sender.Deliver(context.Background(), servicetrade.NewDelivery(account.NextChanges(3, now), now))
	fmt.Println("delivered:", res.Delivered, "attempts:", res.Attempts, "status:", res.Status)
	fmt.Printf("%+v\n", sender.Stats())
	// Output:
	// delivered: true attempts: 2 status: 200
	// {Deliveries:1 Attempts:2 Delivered:1 Discarded:0 Canceled:0 DuplicatesSent:0 Reordered:0 EventsDelivered:3 EventsDiscarded:0}
}
