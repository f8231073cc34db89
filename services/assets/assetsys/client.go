// Package assetsys is the client of the downstream asset registry, the sink the assets
// service writes assets and locations to. Its grouped write, PutAssets, sends many assets
// of one location in one call and reports an outcome per asset.
//
// Errors are classified with package failure: every non-2xx answer through
// failure.FromHTTP (429 and 5xx transient with their Retry-After, other 4xx permanent), a
// network error or timeout transient, and a 2xx answer the client cannot make sense of
// permanent (retrying the same call cannot change how it is read). Every write carries the
// event id it applies, and the registry ignores one it has applied before, so a call that
// failed transiently may be repeated as it is.
package assetsys

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/fieldstream/fieldstream/pkg/failure"
	"github.com/fieldstream/fieldstream/pkg/jsonhttp"
)

// DefaultTimeout bounds each request whose context has no deadline.
const DefaultTimeout = jsonhttp.DefaultTimeout

// Asset statuses.
const (
	StatusActive   = "active"
	StatusInactive = "inactive"
)

// Outcomes of one asset of a grouped write, in ItemResult.Status.
const (
	// ResultApplied: the registry applied the asset.
	ResultApplied = "applied"
	// ResultDuplicate: the registry had applied this event to this asset before.
	ResultDuplicate = "duplicate"
	// ResultStale: the registry holds a newer version (by Updated); nothing changed.
	ResultStale = "stale"
	// ResultRejected: the asset is invalid; ItemResult.Err says why.
	ResultRejected = "rejected"
)

// Asset is an asset as the registry takes it. EventID is the event that produced this
// version; Updated (Unix seconds) orders versions.
type Asset struct {
	ID         int64             `json:"id"`
	EventID    string            `json:"eventId"`
	LocationID int64             `json:"locationId"`
	Type       string            `json:"type"`
	Status     string            `json:"status"`
	ParentID   int64             `json:"parentId,omitempty"`
	Properties map[string]string `json:"properties,omitempty"`
	Updated    int64             `json:"updated"`
}

// Address is a location's street address.
type Address struct {
	Street     string `json:"street,omitempty"`
	City       string `json:"city,omitempty"`
	State      string `json:"state,omitempty"`
	PostalCode string `json:"postalCode,omitempty"`
}

// Location is a service location as the registry takes it.
type Location struct {
	ID        int64   `json:"id"`
	EventID   string  `json:"eventId"`
	CompanyID int64   `json:"companyId"`
	Name      string  `json:"name"`
	Address   Address `json:"address"`
	Status    string  `json:"status,omitempty"`
	Updated   int64   `json:"updated"`
}

// ItemResult is the registry's outcome for one asset of a grouped write. Err is nil for
// ResultApplied, ResultDuplicate and ResultStale; for ResultRejected (or an outcome this
// client does not know) it is permanent and holds a *RejectedError.
type ItemResult struct {
	ID      int64
	EventID string
	Status  string
	Err     error
}

// RejectedError is an asset the registry refused as invalid.
type RejectedError struct {
	ID      int64
	EventID string
	Reason  string
}

func (e *RejectedError) Error() string {
	return fmt.Sprintf("assetsys: asset %d (event %s) rejected: %s", e.ID, e.EventID, e.Reason)
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
	return jsonhttp.Config{Name: "assetsys", BaseURL: c.BaseURL, HTTPClient: c.HTTPClient, Timeout: c.Timeout}
}

// Validate reports a setting New would reject.
func (c Config) Validate() error { return c.jsonhttp().Validate() }

// Client talks to the system. It is safe for concurrent use.
type Client struct {
	http *jsonhttp.Client
}

// New returns a client of the registry at cfg.BaseURL.
func New(cfg Config) (*Client, error) {
	h, err := jsonhttp.New(cfg.jsonhttp())
	if err != nil {
		return nil, err
	}
	return &Client{http: h}, nil
}

// PutAssets writes assets, which must all stand at locationID, in one grouped call. The
// error is for the call as a whole (nothing can be said of any asset); otherwise there is
// one ItemResult per asset, in order, and a rejected asset does not keep its neighbours
// from applying. An empty assets makes no call.
func (c *Client) PutAssets(ctx context.Context, locationID int64, assets []Asset) ([]ItemResult, error) {
	if len(assets) == 0 {
		return nil, nil
	}
	var reply struct {
		Results []struct {
			ID      int64  `json:"id"`
			EventID string `json:"eventId"`
			Status  string `json:"status"`
			Error   string `json:"error"`
		} `json:"results"`
	}
	path := "/locations/" + strconv.FormatInt(locationID, 10) + "/assets"
	body := struct {
		Assets []Asset `json:"assets"`
	}{assets}
	if err := c.http.Do(ctx, http.MethodPut, path, body, &reply); err != nil {
		return nil, err
	}
	if len(reply.Results) != len(assets) {
		return nil, failure.Permanent(fmt.Errorf("assetsys: PUT %s: %d results for %d assets", path, len(reply.Results), len(assets)))
	}
	results := make([]ItemResult, len(assets))
	for i, a := range assets {
		r := reply.Results[i]
		if r.ID != 0 && r.ID != a.ID {
			return nil, failure.Permanent(fmt.Errorf("assetsys: PUT %s: result %d is for asset %d, not %d", path, i, r.ID, a.ID))
		}
		results[i] = ItemResult{ID: a.ID, EventID: a.EventID, Status: r.Status}
		switch r.Status {
		case ResultApplied, ResultDuplicate, ResultStale:
		case ResultRejected:
			results[i].Err = failure.Permanent(&RejectedError{ID: a.ID, EventID: a.EventID, Reason: r.Error})
		default:
			results[i].Err = failure.Permanent(&RejectedError{ID: a.ID, EventID: a.EventID, Reason: fmt.Sprintf("unknown outcome %q", r.Status)})
		}
	}
	return results, nil
}

// PutLocation writes a location. A stale or duplicate write is not an error: the registry
// already holds this version or a newer one.
func (c *Client) PutLocation(ctx context.Context, loc Location) error {
	path := "/locations/" + strconv.FormatInt(loc.ID, 10)
	return c.http.Do(ctx, http.MethodPut, path, loc, nil)
}

// DeleteAsset deletes asset id on behalf of event eventID. Deleting it again with the same
// eventID succeeds; an asset the registry does not hold is a permanent error with
// failure.StatusOf 404, which a caller may take as already deleted.
func (c *Client) DeleteAsset(ctx context.Context, id int64, eventID string) error {
	path := "/assets/" + strconv.FormatInt(id, 10) + "?eventId=" + url.QueryEscape(eventID)
	return c.http.Do(ctx, http.MethodDelete, path, nil, nil)
}
