// Package jsonhttp sends JSON requests to the downstream systems fieldstream writes to,
// classifying every failure with pkg/failure: network errors and timeouts are transient,
// answers are classified by status (failure.FromHTTP), and a request that can never be
// sent or an answer that can never be read is permanent.
package jsonhttp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/fieldstream/fieldstream/pkg/failure"
	"github.com/fieldstream/fieldstream/pkg/tracing"
)

// DefaultTimeout bounds a request whose context has no deadline.
const DefaultTimeout = 10 * time.Second

// Limits on what is read of an answer.
const (
	maxReply   = 4 << 20
	errSnippet = 512
)

// Config configures New.
type Config struct {
	// Name prefixes every error, e.g. "assetsys".
	Name string
	// BaseURL is the system's root, e.g. "https://assets.example.com". Required.
	BaseURL string
	// HTTPClient sends the requests. Default http.DefaultClient.
	HTTPClient *http.Client
	// Timeout bounds each request whose context has no deadline. Default DefaultTimeout.
	Timeout time.Duration
	// Prepare, if set, adds what every request needs, such as credentials.
	Prepare func(*http.Request)
}

// Validate reports a setting New would reject.
func (c Config) Validate() error {
	var errs []error
	if u, err := url.Parse(c.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("%s: BaseURL %q: want an http(s) URL", c.Name, c.BaseURL))
	}
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("%s: Timeout %v: must not be negative", c.Name, c.Timeout))
	}
	return errors.Join(errs...)
}

// Client sends JSON requests to one system. It is safe for concurrent use.
type Client struct {
	cfg Config
}

// New returns a client of the system at cfg.BaseURL.
func New(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = http.DefaultClient
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	return &Client{cfg: cfg}, nil
}

// Answer is what the system answered: its status, headers and body (at most 4 MiB).
type Answer struct {
	Status int
	Header http.Header
	Body   []byte
}

// OK reports a 2xx status.
func (a Answer) OK() bool { return a.Status >= 200 && a.Status <= 299 }

// Send sends body (if not nil) as JSON to path and returns the answer, whatever its status.
// Its error is only for a request that could not be made or answered.
func (c *Client) Send(ctx context.Context, method, path string, body any) (Answer, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.Timeout)
		defer cancel()
	}
	u := c.cfg.BaseURL + path
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return Answer{}, failure.Permanent(fmt.Errorf("%s: %s %s: %w", c.cfg.Name, method, u, err))
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return Answer{}, failure.Permanent(fmt.Errorf("%s: %w", c.cfg.Name, err))
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.cfg.Prepare != nil {
		c.cfg.Prepare(req)
	}
	req, end := tracing.StartHTTP(req, c.cfg.Name) // the event's trace continues at the sink
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		end(0, err)
		return Answer{}, failure.Transient(fmt.Errorf("%s: %w", c.cfg.Name, err), 0)
	}
	end(resp.StatusCode, nil)
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxReply))
	if err != nil {
		return Answer{}, failure.Transient(fmt.Errorf("%s: %s %s: reading the reply: %w", c.cfg.Name, method, u, err), 0)
	}
	return Answer{Status: resp.StatusCode, Header: resp.Header, Body: data}, nil
}

// Do sends body (if not nil) as JSON and decodes a 2xx answer into reply (if not nil). A
// non-2xx answer is an error classified by failure.FromHTTP, with the start of its body.
func (c *Client) Do(ctx context.Context, method, path string, body, reply any) error {
	a, err := c.Send(ctx, method, path, body)
	if err != nil {
		return err
	}
	if !a.OK() {
		return c.StatusError(method, path, a)
	}
	if reply == nil {
		return nil
	}
	if err := json.Unmarshal(a.Body, reply); err != nil {
		return failure.Permanent(fmt.Errorf("%s: %s %s: HTTP %d with an unreadable reply: %w", c.cfg.Name, method, c.cfg.BaseURL+path, a.Status, err))
	}
	return nil
}

// StatusError is the classified error of a non-2xx answer to method path.
func (c *Client) StatusError(method, path string, a Answer) error {
	return fmt.Errorf("%s: %w", c.cfg.Name, failure.FromHTTP(method, c.cfg.BaseURL+path, a.Status, a.Header, Snippet(a.Body)))
}

// Snippet is the start of a body, for an error message.
func Snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > errSnippet {
		s = s[:errSnippet] + "…"
	}
	return s
}
