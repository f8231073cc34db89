package servicetrade

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/fieldstream/fieldstream/pkg/failure"
)

// ListOptions select what a list walk visits. The zero value visits everything, a page of
// the API's default size at a time.
type ListOptions struct {
	// UpdatedAfter, if set, keeps entities updated strictly after it. It is sent as Unix
	// seconds; the fraction of a second is dropped.
	UpdatedAfter time.Time
	// Limit is the page size; 0 lets the API choose (ServiceTrade: 100). The API may cap
	// it (the simulator at 500).
	Limit int

	// Clock event filters: only ListClockEvents sends them; other walks fail with a
	// permanent error when one is set.

	// UserID and JobID, if set, keep the clock events of that technician or job.
	UserID, JobID int64
	// Activity, if set, keeps the clock events of that activity: enroute, onsite, offsite.
	Activity string
	// StartTime and EndTime, if set, keep the clock events that clock in at or after
	// StartTime and before EndTime (the simulator's reading of ServiceTrade's filters).
	StartTime, EndTime time.Time
}

func (o ListOptions) query(clockFilters bool) (url.Values, error) {
	if o.Limit < 0 {
		return nil, fmt.Errorf("servicetrade: list: Limit %d: must not be negative", o.Limit)
	}
	hasClock := o.UserID != 0 || o.JobID != 0 || o.Activity != "" || !o.StartTime.IsZero() || !o.EndTime.IsZero()
	if hasClock && !clockFilters {
		return nil, errors.New("servicetrade: list: UserID, JobID, Activity, StartTime and EndTime filter clock events only")
	}
	q := url.Values{}
	if o.Limit > 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	setUnix := func(key string, t time.Time) {
		if !t.IsZero() {
			q.Set(key, strconv.FormatInt(t.Unix(), 10))
		}
	}
	setUnix("updatedAfter", o.UpdatedAfter)
	setUnix("startTime", o.StartTime)
	setUnix("endTime", o.EndTime)
	if o.UserID != 0 {
		q.Set("userId", strconv.FormatInt(o.UserID, 10))
	}
	if o.JobID != 0 {
		q.Set("jobId", strconv.FormatInt(o.JobID, 10))
	}
	if o.Activity != "" {
		q.Set("activity", o.Activity)
	}
	return q, nil
}

// The list walks below share their contract. A walk requests page 1, 2, … until the
// answer's totalPages, and calls fn with each entity in the order served (by update time,
// then id). It stops at, and returns as it is, the first error of fn; a request error is
// classified as in the package comment, and the walk can be started again.
//
// Pages are by offset, as ServiceTrade's: if entities change during a walk, the ones
// changed move to the end, so the walk may visit one twice and, as the rest shift, skip
// one. fn should be idempotent, and a polling backstop should walk again from an
// UpdatedAfter some time before the previous walk began.

// ListJobs walks the jobs selected by opts.
func (c *Client) ListJobs(ctx context.Context, opts ListOptions, fn func(Job) error) error {
	return walk(ctx, c, "job", "jobs", opts, false, fn)
}

// ListAssets walks the assets selected by opts.
func (c *Client) ListAssets(ctx context.Context, opts ListOptions, fn func(Asset) error) error {
	return walk(ctx, c, "asset", "assets", opts, false, fn)
}

// ListLocations walks the locations selected by opts.
func (c *Client) ListLocations(ctx context.Context, opts ListOptions, fn func(Location) error) error {
	return walk(ctx, c, "location", "locations", opts, false, fn)
}

// ListClockEvents walks the clock events selected by opts, clock event filters included.
func (c *Client) ListClockEvents(ctx context.Context, opts ListOptions, fn func(ClockEvent) error) error {
	return walk(ctx, c, "clock", "clockEvents", opts, true, fn)
}

func walk[T any](ctx context.Context, c *Client, typ, plural string, opts ListOptions, clockFilters bool, fn func(T) error) error {
	q, err := opts.query(clockFilters)
	if err != nil {
		return failure.Permanent(err)
	}
	for page := 1; ; page++ {
		q.Set("page", strconv.Itoa(page))
		data, err := getData[map[string]json.RawMessage](ctx, c, "/"+typ, q)
		if err != nil {
			return err
		}
		var totalPages int
		var items []T
		if err := decodeField(data, "totalPages", &totalPages); err != nil {
			return failure.Permanent(fmt.Errorf("servicetrade: GET /%s page %d: %w", typ, page, err))
		}
		if err := decodeField(data, plural, &items); err != nil {
			return failure.Permanent(fmt.Errorf("servicetrade: GET /%s page %d: %w", typ, page, err))
		}
		for _, item := range items {
			if err := fn(item); err != nil {
				return err
			}
		}
		if page >= totalPages || len(items) == 0 {
			return nil
		}
	}
}

func decodeField(data map[string]json.RawMessage, key string, dst any) error {
	raw, ok := data[key]
	if !ok {
		return fmt.Errorf("answer has no data.%s", key)
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		return fmt.Errorf("data.%s: %w", key, err)
	}
	return nil
}
