package servicetrade

import (
	"context"
	"fmt"
	"strconv"

	"github.com/fieldstream/fieldstream/pkg/failure"
)

// Entities as ServiceTrade's API answers them: camelCase fields, times in Unix seconds,
// int64 ids, decoded without passing through float64. Fields this package does not
// name are ignored.

// Company is a customer (or vendor) company; locations belong to one.
type Company struct {
	ID          int64  `json:"id"`
	Name        string `json:"name"`
	PhoneNumber string `json:"phoneNumber"`
	Status      string `json:"status"`
	Created     int64  `json:"created"` // Unix seconds
	Updated     int64  `json:"updated"` // Unix seconds
}

// Address is a street address.
type Address struct {
	Street     string `json:"street"`
	City       string `json:"city"`
	State      string `json:"state"`
	PostalCode string `json:"postalCode"`
}

// Location is a service location: a company's site, where assets stand and jobs happen.
type Location struct {
	ID          int64   `json:"id"`
	Name        string  `json:"name"`
	CompanyID   int64   `json:"companyId"`
	Address     Address `json:"address"`
	PhoneNumber string  `json:"phoneNumber"`
	Status      string  `json:"status"` // active, inactive
	Created     int64   `json:"created"`
	Updated     int64   `json:"updated"`
}

// AssetProperties are an asset's free-form properties; these three are common.
type AssetProperties struct {
	Serial       string `json:"serial"`
	Manufacturer string `json:"manufacturer"`
	Model        string `json:"model"`
}

// Asset is a piece of equipment at a location: an extinguisher, a backflow preventer, …
type Asset struct {
	ID         int64           `json:"id"`
	LocationID int64           `json:"locationId"`
	ParentID   int64           `json:"parentId,omitempty"` // 0: none
	Type       string          `json:"type"`
	Status     string          `json:"status"` // active, inactive
	Properties AssetProperties `json:"properties"`
	// LastInspected is when an inspection last checked the asset (Unix s; 0: never).
	LastInspected int64 `json:"lastInspected,omitempty"`
	Created       int64 `json:"created"`
	Updated       int64 `json:"updated"`
}

// Job is a work order at a location for a customer company.
type Job struct {
	ID          int64  `json:"id"`
	Number      string `json:"number"`
	Type        string `json:"type"`   // inspection, repair, service_call, …
	Status      string `json:"status"` // new, scheduled, completed, closed, …
	Description string `json:"description"`
	LocationID  int64  `json:"locationId"`
	CustomerID  int64  `json:"customerId"`
	DueBy       int64  `json:"dueBy"` // Unix seconds
	Created     int64  `json:"created"`
	Updated     int64  `json:"updated"`
}

// Appointment is a scheduled visit for a job: a time window and the technicians sent.
type Appointment struct {
	ID          int64   `json:"id"`
	JobID       int64   `json:"jobId"`
	Status      string  `json:"status"`
	WindowStart int64   `json:"windowStart"` // Unix seconds
	WindowEnd   int64   `json:"windowEnd"`   // Unix seconds
	TechIDs     []int64 `json:"techIds"`
	Created     int64   `json:"created"`
	Updated     int64   `json:"updated"`
}

// ClockEvent is a technician's time on a job, travelling (enroute) or on site. ClockOut
// is 0 while the event is open; ElapsedTime is in seconds.
type ClockEvent struct {
	ID            int64  `json:"id"`
	UserID        int64  `json:"userId"`
	JobID         int64  `json:"jobId"`
	AppointmentID int64  `json:"appointmentId"`
	Activity      string `json:"activity"` // enroute, onsite, offsite
	Source        string `json:"source"`   // mobile, ivr
	ClockIn       int64  `json:"clockIn"`  // Unix seconds
	ClockOut      int64  `json:"clockOut,omitempty"`
	ElapsedTime   int64  `json:"elapsedTime"`
	Created       int64  `json:"created"`
	Updated       int64  `json:"updated"`
}

// Deficiency is a problem a technician found on an asset during a job.
type Deficiency struct {
	ID          int64  `json:"id"`
	JobID       int64  `json:"jobId"`
	AssetID     int64  `json:"assetId"`
	LocationID  int64  `json:"locationId"`
	Severity    string `json:"severity"` // inoperable, deficient, suggested
	Status      string `json:"status"`   // new, invalid, verified, fixed
	Description string `json:"description"`
	Created     int64  `json:"created"`
	Updated     int64  `json:"updated"`
}

// The single-entity getters below share their contract: an unknown or deleted id is a
// permanent error whose failure.StatusOf is 404 (ServiceTrade answers 404, not 410, for
// deleted entities); an id <= 0 is a permanent error without a request; other errors are
// classified as in the package comment.

// Job returns the job (work order) with id.
func (c *Client) Job(ctx context.Context, id int64) (Job, error) {
	return getEntity[Job](ctx, c, "job", id)
}

// Asset returns the asset with id.
func (c *Client) Asset(ctx context.Context, id int64) (Asset, error) {
	return getEntity[Asset](ctx, c, "asset", id)
}

// Location returns the location with id.
func (c *Client) Location(ctx context.Context, id int64) (Location, error) {
	return getEntity[Location](ctx, c, "location", id)
}

// ClockEvent returns the clock event with id (ServiceTrade's /clock resource).
func (c *Client) ClockEvent(ctx context.Context, id int64) (ClockEvent, error) {
	return getEntity[ClockEvent](ctx, c, "clock", id)
}

// Appointment returns the appointment with id.
func (c *Client) Appointment(ctx context.Context, id int64) (Appointment, error) {
	return getEntity[Appointment](ctx, c, "appointment", id)
}

// Deficiency returns the deficiency with id.
func (c *Client) Deficiency(ctx context.Context, id int64) (Deficiency, error) {
	return getEntity[Deficiency](ctx, c, "deficiency", id)
}

// Company returns the company with id.
func (c *Client) Company(ctx context.Context, id int64) (Company, error) {
	return getEntity[Company](ctx, c, "company", id)
}

func getEntity[T any](ctx context.Context, c *Client, typ string, id int64) (T, error) {
	if id <= 0 {
		var zero T
		return zero, failure.Permanent(fmt.Errorf("servicetrade: %s id %d: want a positive id", typ, id))
	}
	return getData[T](ctx, c, "/"+typ+"/"+strconv.FormatInt(id, 10), nil)
}
