package poller

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// RunSubject is the NATS subject on which the poller of tenant takes poll requests:
// fieldstream.poller.<tenant>.run. The payload is empty or a RunRequest; the reply is a
// RunReply.
//
//	nats request fieldstream.poller.acme.run '{"since":"2h"}' --timeout 5m
func RunSubject(tenant string) string { return "fieldstream.poller." + tenant + ".run" }

// RunRequest asks for one poll.
type RunRequest struct {
	// Since, if set, re-polls from this long ago ("2h") or from this time (RFC 3339)
	// instead of from the checkpoints; see PollOnce.
	Since string `json:"since,omitempty"`
}

// RunReply is the answer to a RunRequest: the poll's Result, and Error when the request
// was refused or the poll failed (the Result then tells what was done).
type RunReply struct {
	Result
	Error string `json:"error,omitempty"`
}

// ParseSince reads a -since or RunRequest.Since value: a positive duration back from now,
// or an RFC 3339 time. "" is the zero time: poll from the checkpoints.
func ParseSince(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d <= 0 {
			return time.Time{}, fmt.Errorf("since %q: want a positive duration", s)
		}
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("since %q: want a duration (2h) or an RFC 3339 time", s)
	}
	return t, nil
}

// Serve answers poll requests on RunSubject(tenant) until ctx ends, then waits for the poll
// it is answering (which ctx's end cuts short) and returns nil. Requests are answered one
// at a time, and a request waits for a scheduled poll under way (Run); a message without a
// reply subject triggers a poll all the same. It returns an error only if it cannot
// subscribe.
func (p *Poller) Serve(ctx context.Context) error {
	var (
		mu     sync.Mutex
		closed bool
		wg     sync.WaitGroup
	)
	sub, err := p.cfg.JetStream.Conn().Subscribe(RunSubject(p.cfg.Tenant), func(m *nats.Msg) {
		mu.Lock()
		if closed {
			mu.Unlock()
			return
		}
		wg.Add(1)
		mu.Unlock()
		defer wg.Done()
		p.answer(ctx, m)
	})
	if err != nil {
		return fmt.Errorf("poller: subscribe %s: %w", RunSubject(p.cfg.Tenant), err)
	}
	<-ctx.Done()
	_ = sub.Unsubscribe()
	mu.Lock()
	closed = true
	mu.Unlock()
	wg.Wait()
	return nil
}

func (p *Poller) answer(ctx context.Context, m *nats.Msg) {
	var (
		reply RunReply
		req   RunRequest
		since time.Time
		err   error
	)
	if len(strings.TrimSpace(string(m.Data))) > 0 {
		if jerr := json.Unmarshal(m.Data, &req); jerr != nil {
			err = fmt.Errorf("request: %w", jerr)
		}
	}
	if err == nil {
		since, err = ParseSince(req.Since, p.cfg.Now())
	}
	if err == nil {
		reply.Result, err = p.PollOnce(ctx, since)
		p.logResult(reply.Result, err, "request")
	}
	if err != nil {
		reply.Error = err.Error()
	}
	if m.Reply == "" {
		return
	}
	data, merr := json.Marshal(reply)
	if merr != nil { // a Result always marshals; keep the requester from waiting regardless
		data = []byte(`{"error":"encoding the reply"}`)
	}
	if rerr := m.Respond(data); rerr != nil {
		p.cfg.Logger.Warn().Err(rerr).Str("subject", m.Subject).Msg("poller: could not answer a poll request")
	}
}
