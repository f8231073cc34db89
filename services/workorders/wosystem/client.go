// Package wosystem is the client of the downstream work-order system, the sink the
// work-orders service writes work orders to.
//
// Errors are classified with package failure: every non-2xx answer through
// failure.FromHTTP (429 and 5xx transient with their Retry-After; 404, 410, 422 and other
// 4xx permanent), a network error or timeout transient. Every write carries the event id
// it applies, and the system ignores one it has applied before, so a call that failed
// transiently may be repeated as it is.
package wosystem

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/fieldstream/fieldstream/pkg/failure"
)

// DefaultTimeout bounds each request whose context has no deadline.
const DefaultTimeout = 10 * time.Second

// WorkOrder is a work order as the system takes it. EventID is the event that produced
// this version; Updated (Unix seconds) orders versions, and the system does not: a caller
// must not send an older version after a newer one. DueBy is Unix seconds.
type WorkOrder struct {
	ID          int64  `json:"id"`
	EventID     string `json:"eventId"`
	Number      string `json:"number,omitempty"`
	Status      string `json:"status"`
	Type        string `json:"type"`
	Description string `json:"description,omitempty"`
	LocationID  int64  `json:"locationId"`
	CustomerID  int64  `json:"customerId,omitempty"`
	ContractID  int64  `json:"contractId,omitempty"`
	DueBy       int64  `json:"dueBy,omitempty"`
	Updated     int64  `json:"updated"`
}

// Config configures New.
type Config struct {
	// BaseURL is the system's root, e.g. "https://workorders.example.com". Required.
	BaseURL string
	// HTTPClient sends the requests. Default http.DefaultClient.
	HTTPClient *http.Client
	// Timeout bounds each request whose context has no deadline. Default DefaultTimeout.
	Timeout time.Duration
}

// Validate reports a setting New would reject.
func (c Config) Validate() error {
	var errs []error
	if u, err := url.Parse(c.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("wosystem: BaseURL %q: want an http(s) URL", c.BaseURL))
	}
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("wosystem: Timeout %v: must not be negative", c.Timeout))
	}
	return errors.Join(errs...)
}

// Client talks to the work-order system. It is safe for concurrent use.
type Client struct {
	base    string
	http    *http.Client
	timeout time.Duration
}

// New returns a client of the system at cfg.BaseURL.
func New(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := &Client{base: strings.TrimRight(cfg.BaseURL, "/"), http: cfg.HTTPClient, timeout: cfg.Timeout}
	if c.http == nil {
		c.http = http.DefaultClient
	}
	if c.timeout == 0 {
		c.timeout = DefaultTimeout
	}
	return c, nil
}

// Upsert creates or replaces work order wo.ID. An invalid work order is a permanent
// error with failure.StatusOf 422.
func (c *Client) Upsert(ctx context.Context, wo WorkOrder) error {
	return c.do(ctx, http.MethodPut, "/work-orders/"+strconv.FormatInt(wo.ID, 10), wo)
}

// Delete deletes work order id on behalf of event eventID. Deleting it again with the same
// eventID succeeds. A work order the system does not hold is a permanent error with
// failure.StatusOf 404, or 410 if the system remembers deleting it; a caller may take
// either as already deleted.
func (c *Client) Delete(ctx context.Context, id int64, eventID string) error {
	return c.do(ctx, http.MethodDelete, "/work-orders/"+strconv.FormatInt(id, 10)+"?eventId="+url.QueryEscape(eventID), nil)
}

// errSnippet is how much of an error reply goes into the error.
const errSnippet = 512

// do sends body (if not nil) as JSON; a 2xx reply is success and its body is not read.
func (c *Client) do(ctx context.Context, method, path string, body any) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	u := c.base + path
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return failure.Permanent(fmt.Errorf("wosystem: %s %s: %w", method, u, err))
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return failure.Permanent(fmt.Errorf("wosystem: %w", err))
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return failure.Transient(fmt.Errorf("wosystem: %w", err), 0)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		// Drain a little so the connection can be reused.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return nil
	}
	// The status classifies the answer; the body only helps the operator.
	data, _ := io.ReadAll(io.LimitReader(resp.Body, errSnippet+1))
	return fmt.Errorf("wosystem: %w", failure.FromHTTP(method, u, resp.StatusCode, resp.Header, snippet(data)))
}

func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > errSnippet {
		s = s[:errSnippet] + "…"
	}
	return s
}
