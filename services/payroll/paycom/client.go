// Package paycom is the client of a Paycom-style payroll system, the sink the payroll
// service imports time punches into (domain.md).
//
// A punch import is all or nothing: if one punch is invalid the payroll rejects the whole
// batch, imports none of it, and does not reliably say which punch was wrong.
// ImportPunches reports that as a permanent *BatchRejectedError; a caller that wants the
// good punches in must split the batch (halves, then single punches) to find the bad one.
// Importing a punch identical to one already imported (same employee, time and type)
// returns the existing punchId, so a batch that failed transiently may be sent again as
// it is.
//
// Errors are classified with package failure: every non-2xx answer through
// failure.FromHTTP (429 and 5xx transient with their Retry-After, other 4xx permanent), a
// network error or timeout transient, and a 2xx answer the client cannot make sense of
// permanent.
package paycom

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/fieldstream/fieldstream/pkg/failure"
	"github.com/fieldstream/fieldstream/pkg/jsonhttp"
)

// DefaultTimeout bounds each request whose context has no deadline.
const DefaultTimeout = jsonhttp.DefaultTimeout

// MaxPageSize is the largest page Paycom serves, and the default Config.PageSize.
const MaxPageSize = 500

// Punch types and the entry type of a punch.
const (
	PunchIn        = "ID" // clock in
	PunchOut       = "OD" // clock out
	EntryTypePunch = 1
)

// Punch is one clock-in or clock-out of an employee.
type Punch struct {
	// EECode is the employee's code in Paycom, e.g. "A001".
	EECode string
	// EntryType is EntryTypePunch.
	EntryType int
	// PunchTime is Unix seconds (a string on the wire).
	PunchTime int64
	// PunchType is PunchIn or PunchOut.
	PunchType string
	// Timezone is the employee's time zone as Paycom names it, e.g. "CST".
	Timezone string
	// PunchID is Paycom's id of an imported punch: set by ListPunches, ignored by
	// ImportPunches.
	PunchID int64
}

// BatchRejectedError is a punch import the payroll refused whole: nothing of it was
// imported. ImportPunches returns it wrapped as a permanent error; find it with errors.As.
type BatchRejectedError struct {
	// Punches is the size of the rejected batch.
	Punches int
	// Errors are the payroll's messages. They need not say which punch was wrong.
	Errors []string
	// Err is the *failure.HTTPStatusError of the answer, or nil if it was a 2xx with
	// "result": false.
	Err error
}

func (e *BatchRejectedError) Error() string {
	return fmt.Sprintf("paycom: batch of %d punches rejected: %s", e.Punches, strings.Join(e.Errors, "; "))
}

func (e *BatchRejectedError) Unwrap() error { return e.Err }

// Config configures New.
type Config struct {
	// BaseURL is the API root that /api/v1.1/… is appended to. Required.
	BaseURL string
	// SID and Token are the API credentials, sent with HTTP Basic auth. Required.
	SID, Token string
	// HTTPClient sends the requests. Default http.DefaultClient.
	HTTPClient *http.Client
	// Timeout bounds each request (each page of ListPunches) whose context has no
	// deadline. Default DefaultTimeout.
	Timeout time.Duration
	// PageSize is how many punches ListPunches asks for per page, 1 to MaxPageSize.
	// Default MaxPageSize.
	PageSize int
}

// Validate reports a setting New would reject.
func (c Config) Validate() error {
	var errs []error
	if err := c.jsonhttp().Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.SID == "" || c.Token == "" {
		errs = append(errs, errors.New("paycom: SID and Token are required"))
	}
	if c.PageSize < 0 || c.PageSize > MaxPageSize {
		errs = append(errs, fmt.Errorf("paycom: PageSize %d: want 1 to %d", c.PageSize, MaxPageSize))
	}
	return errors.Join(errs...)
}

// Client talks to the payroll. It is safe for concurrent use.
type Client struct {
	http     *jsonhttp.Client
	pageSize int
}

// New returns a client of the payroll at cfg.BaseURL.
func New(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	h, err := jsonhttp.New(cfg.jsonhttp())
	if err != nil {
		return nil, err
	}
	c := &Client{http: h, pageSize: cfg.PageSize}
	if c.pageSize == 0 {
		c.pageSize = MaxPageSize
	}
	return c, nil
}

func (c Config) jsonhttp() jsonhttp.Config {
	return jsonhttp.Config{Name: "paycom", BaseURL: c.BaseURL, HTTPClient: c.HTTPClient, Timeout: c.Timeout,
		Prepare: func(r *http.Request) { r.SetBasicAuth(c.SID, c.Token) }}
}

// wirePunch is a punch as the API takes and gives it.
type wirePunch struct {
	PunchID   flexInt `json:"punchId,omitempty"`
	EECode    string  `json:"eecode"`
	EntryType int     `json:"entrytype"`
	PunchTime flexInt `json:"punchtime"`
	PunchType string  `json:"punchtype"`
	Timezone  string  `json:"timezone"`
}

type envelope struct {
	Result     bool            `json:"result"`
	Data       json.RawMessage `json:"data"`
	Errors     []string        `json:"errors"`
	ErrorCount int             `json:"errorCount"`
	Records    int             `json:"records"`
}

// ImportPunches imports punches in one batch and returns their punchIds, in order. If the
// payroll refuses the batch, the error is permanent and holds a *BatchRejectedError, and
// nothing was imported. An empty punches makes no call.
func (c *Client) ImportPunches(ctx context.Context, punches []Punch) ([]int64, error) {
	if len(punches) == 0 {
		return nil, nil
	}
	batch := make([]wirePunch, len(punches))
	for i, p := range punches {
		batch[i] = wirePunch{EECode: p.EECode, EntryType: p.EntryType, PunchTime: flexInt(p.PunchTime), PunchType: p.PunchType, Timezone: p.Timezone}
	}
	const path = "/api/v1.1/punchimport"
	status, env, err := c.do(ctx, http.MethodPost, path, batch)
	if err != nil {
		if (status == http.StatusBadRequest || status == http.StatusUnprocessableEntity) && env != nil {
			return nil, failure.Permanent(&BatchRejectedError{Punches: len(punches), Errors: env.Errors, Err: err})
		}
		return nil, err
	}
	if !env.Result || env.ErrorCount > 0 {
		return nil, failure.Permanent(&BatchRejectedError{Punches: len(punches), Errors: env.Errors})
	}
	var data []wirePunch
	if err := json.Unmarshal(env.Data, &data); err != nil {
		return nil, failure.Permanent(fmt.Errorf("paycom: POST %s: unreadable data: %w", path, err))
	}
	if len(data) != len(punches) {
		return nil, failure.Permanent(fmt.Errorf("paycom: POST %s: %d punchIds for %d punches", path, len(data), len(punches)))
	}
	ids := make([]int64, len(data))
	for i, d := range data {
		if d.PunchID <= 0 {
			return nil, failure.Permanent(fmt.Errorf("paycom: POST %s: punch %d came back without a punchId", path, i))
		}
		ids[i] = int64(d.PunchID)
	}
	return ids, nil
}

// ListPunches returns the punches imported for employee eecode (every employee if
// empty) with times from from to to, both included (a zero time leaves that end open),
// in time order, reading every page.
func (c *Client) ListPunches(ctx context.Context, eecode string, from, to time.Time) ([]Punch, error) {
	q := url.Values{}
	if eecode != "" {
		q.Set("eecode", eecode)
	}
	if !from.IsZero() {
		q.Set("startdate", strconv.FormatInt(from.Unix(), 10))
	}
	if !to.IsZero() {
		q.Set("enddate", strconv.FormatInt(to.Unix(), 10))
	}
	q.Set("pagesize", strconv.Itoa(c.pageSize))
	var punches []Punch
	for page := 1; ; page++ {
		q.Set("page", strconv.Itoa(page))
		path := "/api/v1.1/punches?" + q.Encode()
		status, env, err := c.do(ctx, http.MethodGet, path, nil)
		if err != nil {
			return nil, err
		}
		if !env.Result || env.ErrorCount > 0 {
			return nil, failure.Permanent(fmt.Errorf("paycom: GET %s: HTTP %d with errors: %s", path, status, strings.Join(env.Errors, "; ")))
		}
		var data []wirePunch
		if err := json.Unmarshal(env.Data, &data); err != nil {
			return nil, failure.Permanent(fmt.Errorf("paycom: GET %s: unreadable data: %w", path, err))
		}
		for _, d := range data {
			punches = append(punches, Punch{EECode: d.EECode, EntryType: d.EntryType, PunchTime: int64(d.PunchTime),
				PunchType: d.PunchType, Timezone: d.Timezone, PunchID: int64(d.PunchID)})
		}
		if status != http.StatusPartialContent {
			return punches, nil
		}
		if len(data) == 0 {
			// More pages promised but none given: asking again would spin.
			return nil, failure.Permanent(fmt.Errorf("paycom: GET %s: HTTP 206 with an empty page", path))
		}
	}
}

// do sends body (if not nil) as JSON and returns the status and the envelope of the
// reply. A non-2xx reply is an error from failure.FromHTTP; its envelope is returned too
// when it has one.
func (c *Client) do(ctx context.Context, method, path string, body any) (int, *envelope, error) {
	a, err := c.http.Send(ctx, method, path, body)
	if err != nil {
		return 0, nil, err
	}
	var env envelope
	haveEnv := json.Unmarshal(a.Body, &env) == nil
	if !a.OK() {
		err := c.http.StatusError(method, path, a)
		if !haveEnv {
			return a.Status, nil, err
		}
		return a.Status, &env, err
	}
	if !haveEnv {
		return 0, nil, failure.Permanent(fmt.Errorf("paycom: %s %s: HTTP %d with an unreadable reply: %s", method, path, a.Status, jsonhttp.Snippet(a.Body)))
	}
	return a.Status, &env, nil
}

// flexInt is an int64 that Paycom may write as a number or as a string of digits; it is
// written as a string.
type flexInt int64

func (n flexInt) MarshalJSON() ([]byte, error) {
	return []byte(`"` + strconv.FormatInt(int64(n), 10) + `"`), nil
}

func (n *flexInt) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "" || s == "null" {
		*n = 0
		return nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("paycom: %s: not an integer", b)
	}
	*n = flexInt(v)
	return nil
}
