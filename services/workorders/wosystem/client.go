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
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/fieldstream/fieldstream/pkg/jsonhttp"
)

// DefaultTimeout bounds each request whose context has no deadline.
const DefaultTimeout = jsonhttp.DefaultTimeout

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
	// BaseURL is the system's root. Required.
	BaseURL string
	// HTTPClient sends the requests. Default http.DefaultClient.
	HTTPClient *http.Client
	// Timeout bounds each request whose context has no deadline. Default DefaultTimeout.
	Timeout time.Duration
}

func (c Config) jsonhttp() jsonhttp.Config {
	return jsonhttp.Config{Name: "wosystem", BaseURL: c.BaseURL, HTTPClient: c.HTTPClient, Timeout: c.Timeout}
}

// Validate reports a setting New would reject.
func (c Config) Validate() error { return c.jsonhttp().Validate() }

// Client talks to the system. It is safe for concurrent use.
type Client struct {
	http *jsonhttp.Client
}

// New returns a client of the system at cfg.BaseURL.
func New(cfg Config) (*Client, error) {
	h, err := jsonhttp.New(cfg.jsonhttp())
	if err != nil {
		return nil, err
	}
	return &Client{http: h}, nil
}

// Upsert creates or replaces work order wo.ID. An invalid work order is a permanent
// error with failure.StatusOf 422.
func (c *Client) Upsert(ctx context.Context, wo WorkOrder) error {
	return c.http.Do(ctx, http.MethodPut, "/work-orders/"+strconv.FormatInt(wo.ID, 10), wo, nil)
}

// Delete deletes work order id on behalf of event eventID. Deleting it again with the same
// eventID succeeds. A work order the system does not hold is a permanent error with
// failure.StatusOf 404, or 410 if the system remembers deleting it; a caller may take
// either as already deleted.
func (c *Client) Delete(ctx context.Context, id int64, eventID string) error {
	return c.http.Do(ctx, http.MethodDelete, "/work-orders/"+strconv.FormatInt(id, 10)+"?eventId="+url.QueryEscape(eventID), nil, nil)
}

// errSnippet is how much of an error reply goes into the error.
const errSnippet = 512
