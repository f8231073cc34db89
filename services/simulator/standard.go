package simulator

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/fieldstream/fieldstream/pkg/webhook"
	"github.com/fieldstream/fieldstream/services/simulator/servicetrade"
)

// Sources of a DeliveryRecord.
const (
	SourceServiceTrade = "servicetrade" // a batched ServiceTrade delivery
	SourceStandard     = "standard"     // one Standard Webhooks delivery
)

// StandardSenderConfig configures a StandardSender.
type StandardSenderConfig struct {
	// URL is the Standard Webhooks hook, e.g. http://127.0.0.1:8080/hooks/demo/standard.
	URL string
	// MoreURLs are the same hook on further gateways: attempts go to URL and MoreURLs in
	// turn, as through a load balancer in front of several gateways.
	MoreURLs []string
	// Secret signs the deliveries ("whsec_…").
	Secret string
	// EventsPerSecond is the rate of deliveries (one event each); 0 sends nothing.
	EventsPerSecond float64
	// HeaderFamily is "webhook" (the spec's header names) or "svix" (Svix's); a delivery
	// alternates between them when "both". Default "both".
	HeaderFamily string
	// Attempts is how often a delivery is tried (default 3), with RetryDelay (default 1 s,
	// doubling) between attempts; only a 2xx is delivered, as Standard Webhooks senders
	// count it.
	Attempts   int
	RetryDelay time.Duration
	// Timeout bounds each attempt (default 5 s).
	Timeout time.Duration
}

// StandardSender sends an account's changes as Standard Webhooks, one change a delivery,
// signed, the way a Svix-style sender does: the same change a ServiceTrade webhook would
// report, as {"type":"<entity>.<action>","timestamp":…,"data":{"id":…,…}}.
type StandardSender struct {
	cfg     StandardSenderConfig
	secret  webhook.Secret
	account *servicetrade.Account
	client  *http.Client
	record  func(DeliveryRecord)
	mu      sync.Mutex
	n       int
	attempt int // attempts made, for choosing the URL
}

// NewStandardSender returns a sender of account's changes that hands every delivery's
// record to record.
func NewStandardSender(cfg StandardSenderConfig, account *servicetrade.Account, record func(DeliveryRecord)) (*StandardSender, error) {
	sec, err := webhook.ParseSecret(cfg.Secret)
	if err != nil {
		return nil, err
	}
	if cfg.HeaderFamily == "" {
		cfg.HeaderFamily = "both"
	}
	if cfg.Attempts == 0 {
		cfg.Attempts = 3
	}
	if cfg.RetryDelay == 0 {
		cfg.RetryDelay = time.Second
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	return &StandardSender{cfg: cfg, secret: sec, account: account, client: &http.Client{}, record: record}, nil
}

// Run sends at EventsPerSecond until ctx ends, then waits for the deliveries in flight.
func (s *StandardSender) Run(ctx context.Context) {
	if s.cfg.EventsPerSecond <= 0 {
		<-ctx.Done()
		return
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	tick := time.NewTicker(time.Duration(float64(time.Second) / s.cfg.EventsPerSecond))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		d, err := s.next(time.Now())
		if err != nil {
			continue
		}
		wg.Go(func() { s.record(s.deliver(ctx, d)) })
	}
}

// standardDelivery is one delivery: its id, header family and body.
type standardDelivery struct {
	id, family string
	body       []byte
}

// next turns the account's next change into a delivery, with the entity and action the
// gateway would derive from the same change sent by ServiceTrade.
func (s *StandardSender) next(now time.Time) (standardDelivery, error) {
	ch := s.account.NextChanges(1, now)
	st, err := servicetrade.NewDelivery(ch, now).Body()
	if err != nil {
		return standardDelivery{}, err
	}
	parsed, err := webhook.ParseServiceTrade(st)
	if err != nil || len(parsed.Items) != 1 {
		return standardDelivery{}, fmt.Errorf("change does not parse: %v", err)
	}
	it := parsed.Items[0]
	body, err := json.Marshal(map[string]any{
		"type":      it.Entity + "." + it.Action,
		"timestamp": it.Time.UTC().Format(time.RFC3339),
		"data":      map[string]any{"id": it.EntityID, "userId": ch[0].UserID, "changeset": ch[0].Changeset},
	})
	if err != nil {
		return standardDelivery{}, err
	}
	var b [12]byte
	rand.Read(b[:])
	s.mu.Lock()
	s.n++
	family := s.cfg.HeaderFamily
	if family == "both" {
		family = [2]string{"webhook", "svix"}[s.n%2]
	}
	s.mu.Unlock()
	return standardDelivery{id: "msg_" + hex.EncodeToString(b[:]), family: family, body: body}, nil
}

// deliver POSTs d up to Attempts times, signing each attempt afresh.
func (s *StandardSender) deliver(ctx context.Context, d standardDelivery) DeliveryRecord {
	rec := DeliveryRecord{Source: SourceStandard, MessageID: d.id, Outcome: OutcomeCanceled, Body: d.body}
	delay := s.cfg.RetryDelay
	for attempt := 1; attempt <= s.cfg.Attempts; attempt++ {
		if attempt > 1 {
			select {
			case <-ctx.Done():
				return rec
			case <-time.After(delay):
			}
			delay *= 2
		}
		if ctx.Err() != nil {
			return rec
		}
		rec.Attempts = attempt
		rec.Status = s.post(ctx, d)
		rec.Answered = time.Time{}
		if rec.Status != 0 {
			rec.Answered = time.Now()
		}
		if rec.Status/100 == 2 {
			rec.Outcome = OutcomeDelivered
			return rec
		}
		if ctx.Err() != nil {
			return rec
		}
	}
	rec.Outcome = OutcomeDiscarded
	return rec
}

func (s *StandardSender) post(ctx context.Context, d standardDelivery) int {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	urls := append([]string{s.cfg.URL}, s.cfg.MoreURLs...)
	s.mu.Lock()
	target := urls[s.attempt%len(urls)]
	s.attempt++
	s.mu.Unlock()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(d.body))
	if err != nil {
		return 0
	}
	now := time.Now().Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(d.family+"-id", d.id)
	req.Header.Set(d.family+"-timestamp", strconv.FormatInt(now, 10))
	req.Header.Set(d.family+"-signature", s.secret.Sign(d.id, now, d.body))
	resp, err := s.client.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode
}
