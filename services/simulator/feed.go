package simulator

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/fieldstream/fieldstream/services/simulator/jsonapi"
	"github.com/fieldstream/fieldstream/services/simulator/servicetrade"
)

// FeedPrefix is where a Feed's admin endpoints live, beside the ServiceTrade API.
const FeedPrefix = "/admin/feed/"

// Outcomes of a delivery in DeliveryRecord.Outcome.
const (
	OutcomeDelivered = "delivered" // an attempt got a 200–499 reply
	OutcomeDiscarded = "discarded" // every attempt failed; ServiceTrade drops it
	OutcomeCanceled  = "canceled"  // the feed stopped while it was in flight
)

// DeliveryRecord is the outcome of one webhook delivery the feed made, with the exact body
// it POSTed, so that a test driver can derive the events the gateway made of it.
type DeliveryRecord struct {
	// Source is SourceServiceTrade (the zero value reads as it) or SourceStandard.
	Source    string          `json:"source,omitempty"`
	MessageID string          `json:"messageId"` // ServiceTrade's messageId; a Standard Webhooks delivery's webhook-id`
	Seq       uint64          `json:"seq"`
	Duplicate bool            `json:"duplicate,omitempty"`
	Attempts  int             `json:"attempts"` // POSTs begun; 0: never sent
	Status    int             `json:"status"`   // reply to the last attempt; 0: none
	Answered  time.Time       `json:"answered"` // when that reply came; zero: none
	Outcome   string          `json:"outcome"`
	Body      json.RawMessage `json:"body"`
}

// AccountSnapshot is what a test driver needs of the account's final state to judge the
// sinks: which jobs, assets and locations still exist (deleted ones answer 404), every
// clock event, and the payroll employee code of each technician.
type AccountSnapshot struct {
	Jobs        []int64                   `json:"jobs"`
	Assets      []int64                   `json:"assets"`
	Locations   []int64                   `json:"locations"`
	ClockEvents []servicetrade.ClockEvent `json:"clockEvents"`
	EECodes     map[int64]string          `json:"eecodes"`
	// Updated is every existing entity's last update (Unix seconds) by ServiceTrade
	// type (job, asset, location, clock) and id: what a poll now would read.
	Updated map[string]map[int64]int64 `json:"updated"`
}

// Feed sends the stack's account changes as ServiceTrade webhooks — and, if configured,
// some as Standard Webhooks beside them — on demand and keeps the outcome of every delivery, for a driver in another process (the chaos campaign) that
// must know what was attempted and what was answered 2xx. Its handler serves
//
//	POST FeedPrefix+"start"       start sending (409 if already sending)
//	POST FeedPrefix+"stop"        stop; waits for deliveries in flight (they end canceled)
//	GET  FeedPrefix+"deliveries"  []DeliveryRecord, in completion order
//	GET  FeedPrefix+"account"     AccountSnapshot
//	GET  FeedPrefix+"employees"   {"<ServiceTrade user id>":"<payroll employee code>",…}, the
//	                              mapping an operator loads with `fsctl employees import`
//
// It is safe for concurrent use.
type Feed struct {
	stack    *Stack
	sender   *servicetrade.Sender
	standard *StandardSender // nil: ServiceTrade only

	mu      sync.Mutex
	records []DeliveryRecord
	stop    context.CancelFunc
	done    chan struct{}
}

// NewFeed returns a stopped feed of stack's account per cfg; cfg.OnResult is the feed's.
// With std, a Standard Webhooks sender of the same account runs beside it.
func NewFeed(stack *Stack, cfg servicetrade.SenderConfig, std *StandardSenderConfig) (*Feed, error) {
	f := &Feed{stack: stack}
	cfg.OnResult = f.record
	s, err := servicetrade.NewSender(cfg, stack.Account)
	if err != nil {
		return nil, err
	}
	f.sender = s
	if std != nil {
		if f.standard, err = NewStandardSender(*std, stack.Account, f.add); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// ErrFeedRunning: Start was called while the feed was sending.
var ErrFeedRunning = errors.New("simulator: feed is already sending")

// Start starts sending in the background until Stop.
func (f *Feed) Start() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stop != nil {
		return ErrFeedRunning
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	f.stop, f.done = cancel, done
	go func() {
		defer close(done)
		var wg sync.WaitGroup
		if f.standard != nil {
			wg.Go(func() { f.standard.Run(ctx) })
		}
		_ = f.sender.Run(ctx)
		wg.Wait()
	}()
	return nil
}

// Stop stops sending and returns once no delivery is in flight. Stopping a stopped feed
// does nothing.
func (f *Feed) Stop() {
	f.mu.Lock()
	stop, done := f.stop, f.done
	f.stop, f.done = nil, nil
	f.mu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
}

// Deliveries returns a copy of every delivery's record so far.
func (f *Feed) Deliveries() []DeliveryRecord {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]DeliveryRecord(nil), f.records...)
}

// Snapshot returns the account's current state as AccountSnapshot describes it.
func (f *Feed) Snapshot() AccountSnapshot {
	a := f.stack.Account
	snap := AccountSnapshot{ClockEvents: a.ClockEvents(), EECodes: f.stack.EECodes, Updated: map[string]map[int64]int64{
		servicetrade.TypeJob: {}, servicetrade.TypeAsset: {}, servicetrade.TypeLocation: {}, servicetrade.TypeClock: {}}}
	for _, j := range a.Jobs() {
		snap.Jobs = append(snap.Jobs, j.ID)
		snap.Updated[servicetrade.TypeJob][j.ID] = j.Updated
	}
	for _, as := range a.Assets() {
		snap.Assets = append(snap.Assets, as.ID)
		snap.Updated[servicetrade.TypeAsset][as.ID] = as.Updated
	}
	for _, l := range a.Locations() {
		snap.Locations = append(snap.Locations, l.ID)
		snap.Updated[servicetrade.TypeLocation][l.ID] = l.Updated
	}
	for _, c := range snap.ClockEvents {
		snap.Updated[servicetrade.TypeClock][c.ID] = c.Updated
	}
	return snap
}

func (f *Feed) record(res servicetrade.Result) {
	body, _ := res.Delivery.Body() // the sender already encoded it once
	rec := DeliveryRecord{Source: SourceServiceTrade, MessageID: res.Delivery.MessageID, Seq: res.Delivery.Seq, Duplicate: res.Duplicate,
		Attempts: res.Attempts, Status: res.Status, Answered: res.Answered, Outcome: OutcomeCanceled, Body: body}
	switch {
	case res.Delivered:
		rec.Outcome = OutcomeDelivered
	case errors.Is(res.Err, servicetrade.ErrDiscarded):
		rec.Outcome = OutcomeDiscarded
	}
	f.add(rec)
}

func (f *Feed) add(rec DeliveryRecord) {
	f.mu.Lock()
	f.records = append(f.records, rec)
	f.mu.Unlock()
}

// Handler serves the feed's admin endpoints under FeedPrefix.
func (f *Feed) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+FeedPrefix+"start", func(w http.ResponseWriter, _ *http.Request) {
		if err := f.Start(); err != nil {
			jsonapi.WriteError(w, http.StatusConflict, err.Error())
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST "+FeedPrefix+"stop", func(w http.ResponseWriter, _ *http.Request) {
		f.Stop()
		jsonapi.WriteJSON(w, http.StatusOK, f.sender.Stats())
	})
	mux.HandleFunc("GET "+FeedPrefix+"deliveries", func(w http.ResponseWriter, _ *http.Request) {
		jsonapi.WriteJSON(w, http.StatusOK, f.Deliveries())
	})
	mux.HandleFunc("GET "+FeedPrefix+"account", func(w http.ResponseWriter, _ *http.Request) {
		jsonapi.WriteJSON(w, http.StatusOK, f.Snapshot())
	})
	mux.HandleFunc("GET "+FeedPrefix+"employees", func(w http.ResponseWriter, _ *http.Request) {
		jsonapi.WriteJSON(w, http.StatusOK, f.stack.EECodes)
	})
	return mux
}
