package harness

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fieldstream/fieldstream/pkg/webhook"
)

// LoadConfig describes webhook load against one gateway and tenant.
type LoadConfig struct {
	URL    string // the gateway's base URL
	Tenant string
	// Secret is the tenant's Standard Webhooks secret ("whsec_…"); Token its ServiceTrade
	// hook token. Even-numbered senders post Standard Webhooks (one event a request), odd
	// ones ServiceTrade deliveries of Batch items.
	Secret, Token string
	Senders       int
	Batch         int
	// Attempts is how often a request not answered 2xx is sent again, unchanged but for a
	// fresh signature, before the sender moves on (default 3), as real senders retry.
	Attempts int
	// Timeout bounds one request; a request without an answer by then is recorded with Err.
	// It should be well above the gateway's answer deadline, so that hitting it means the
	// gateway hung (default 15 s).
	Timeout time.Duration
}

// Answer is what the gateway answered one request.
type Answer struct {
	IDs        []string // the Nats-Msg-Id of every event the request carried
	Status     int      // 0 when no answer came (Err says why)
	RetryAfter string
	Body       string
	Sent       time.Time
	Answered   time.Time
	Err        error
}

// OK reports a 2xx answer.
func (a Answer) OK() bool { return a.Status/100 == 2 }

// Load is webhook load in progress; every answer is recorded.
type Load struct {
	cfg    LoadConfig
	secret webhook.Secret
	client *http.Client
	seq    atomic.Int64
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	answers []Answer
}

// StartLoad starts cfg.Senders concurrent senders, each sending its next request as soon as
// the previous one is answered, until Stop.
func StartLoad(cfg LoadConfig) (*Load, error) {
	if cfg.Attempts == 0 {
		cfg.Attempts = 3
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 15 * time.Second
	}
	if cfg.Batch == 0 {
		cfg.Batch = 1
	}
	sec, err := webhook.ParseSecret(cfg.Secret)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &Load{cfg: cfg, secret: sec, cancel: cancel, client: &http.Client{
		Timeout:   cfg.Timeout,
		Transport: &http.Transport{MaxIdleConnsPerHost: cfg.Senders},
	}}
	for i := range cfg.Senders {
		l.wg.Add(1)
		go l.run(ctx, i%2 == 1)
	}
	return l, nil
}

func (l *Load) run(ctx context.Context, serviceTrade bool) {
	defer l.wg.Done()
	for ctx.Err() == nil {
		req, err := l.standardRequest(), error(nil)
		if serviceTrade {
			req, err = l.serviceTradeRequest()
		}
		if err != nil { // recorded: a harness that cannot build its load must fail the test
			l.record(Answer{Sent: time.Now(), Answered: time.Now(), Err: err})
			return
		}
		for attempt := 0; attempt < l.cfg.Attempts && ctx.Err() == nil; attempt++ {
			if attempt > 0 {
				select { // a retrying sender paces itself; the others keep the load up
				case <-ctx.Done():
				case <-time.After(100 * time.Millisecond):
				}
			}
			if a := l.send(req); a.OK() {
				break
			}
		}
	}
}

// request is one webhook delivery; sign makes its headers for a (re)send at now.
type request struct {
	path string
	body []byte
	ids  []string
	sign func(now time.Time, h http.Header)
}

func (l *Load) standardRequest() request {
	n := l.seq.Add(1)
	id := "msg_load_" + strconv.FormatInt(n, 10)
	body := fmt.Appendf(nil, `{"type":"asset.updated","timestamp":%q,"data":{"id":%d,"status":"active"}}`,
		time.Now().UTC().Format(time.RFC3339), 2274033731790000+n)
	return request{
		path: "/hooks/" + l.cfg.Tenant + "/standard",
		body: body,
		ids:  []string{webhook.StandardDedupID(l.cfg.Tenant, id)},
		sign: func(now time.Time, h http.Header) {
			h.Set("webhook-id", id)
			h.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
			h.Set("webhook-signature", l.secret.Sign(id, now.Unix(), body))
		},
	}
}

func (l *Load) serviceTradeRequest() (request, error) {
	now := time.Now().Unix()
	var b bytes.Buffer
	fmt.Fprintf(&b, `{"messageId":"load-%d","timestamp":"%d","data":[`, l.seq.Add(1), now)
	for i := range l.cfg.Batch {
		if i > 0 {
			b.WriteByte(',')
		}
		job := 2274033731790000 + l.seq.Add(1)
		fmt.Fprintf(&b, `{"action":"updated","timestamp":%d,"userId":2274033731790001,"entity":{"type":"job","id":%d,"uri":"https://api.servicetrade.com/api/job/%d"},"changeset":[{"field":"status","oldValue":"scheduled","newValue":"completed"}]}`, now, job, job)
	}
	b.WriteString("]}")
	req := request{path: "/hooks/" + l.cfg.Tenant + "/servicetrade/" + l.cfg.Token, body: b.Bytes(), sign: func(time.Time, http.Header) {}}
	// The ids are the gateway's own derivation, from the library it uses.
	d, err := webhook.ParseServiceTrade(req.body)
	if err != nil {
		return request{}, fmt.Errorf("harness built an invalid ServiceTrade delivery: %w", err)
	}
	for _, it := range d.Items {
		req.ids = append(req.ids, it.DedupID(l.cfg.Tenant))
	}
	return req, nil
}

func (l *Load) send(r request) Answer {
	a := Answer{IDs: r.ids, Sent: time.Now()}
	hr, err := http.NewRequest(http.MethodPost, l.cfg.URL+r.path, bytes.NewReader(r.body))
	var resp *http.Response
	if err == nil {
		hr.Header.Set("Content-Type", "application/json")
		r.sign(a.Sent, hr.Header)
		resp, err = l.client.Do(hr)
	}
	if err == nil {
		body, rerr := io.ReadAll(resp.Body)
		resp.Body.Close()
		a.Status, a.RetryAfter, a.Body, err = resp.StatusCode, resp.Header.Get("Retry-After"), string(body), rerr
	}
	a.Answered, a.Err = time.Now(), err
	l.record(a)
	return a
}

func (l *Load) record(a Answer) {
	l.mu.Lock()
	l.answers = append(l.answers, a)
	l.mu.Unlock()
}

// Count returns how many answers so far satisfy match.
func (l *Load) Count(match func(Answer) bool) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, a := range l.answers {
		if match(a) {
			n++
		}
	}
	return n
}

// Stop stops the senders, waits for every request in flight to be answered (or to time
// out) and returns every answer in the order they came. It may be called more than once.
func (l *Load) Stop() []Answer {
	l.cancel()
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Answer(nil), l.answers...)
}
