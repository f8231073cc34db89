package servicetrade

import "slices"

// Entity types as ServiceTrade names them in a webhook item's entity.type and in API
// URIs (https://api.servicetrade.com/api/<type>/<id>).
const (
	TypeCompany     = "company"
	TypeLocation    = "location"
	TypeAsset       = "asset"
	TypeJob         = "job"
	TypeAppointment = "appointment"
	TypeClock       = "clock"
	TypeDeficiency  = "deficiency"
)

// Webhook item actions.
const (
	ActionCreated = "created"
	ActionUpdated = "updated"
	ActionDeleted = "deleted"
)

// Job statuses (domain.md).
const (
	JobNew            = "new"
	JobBidding        = "bidding"
	JobScheduled      = "scheduled"
	JobCanceled       = "canceled"
	JobCompleted      = "completed"
	JobPendingInvoice = "pending_invoice"
	JobSendingInvoice = "sending_invoice"
	JobClosed         = "closed"
)

// Appointment statuses (domain.md).
const (
	AppointmentUnscheduled        = "unscheduled"
	AppointmentScheduled          = "scheduled"
	AppointmentCanceledByVendor   = "canceled_by_vendor"
	AppointmentCanceledByCustomer = "canceled_by_customer"
	AppointmentCompleted          = "completed"
	AppointmentNoShow             = "no_show"
)

// Clock event activities (domain.md).
const (
	ActivityEnroute = "enroute"
	ActivityOnsite  = "onsite"
	ActivityOffsite = "offsite"
)

// Deficiency severities and statuses (domain.md).
const (
	SeverityInoperable = "inoperable"
	SeverityDeficient  = "deficient"
	SeveritySuggested  = "suggested"

	DeficiencyNew      = "new"
	DeficiencyInvalid  = "invalid"
	DeficiencyVerified = "verified"
	DeficiencyFixed    = "fixed"
)

// Asset and location statuses.
const (
	StatusActive   = "active"
	StatusInactive = "inactive"
)

// The entities below are what the simulated account holds. Field names and JSON tags follow
// ServiceTrade's API (camelCase, Unix-second times, int64 ids), so that a REST simulator can
// serve them as they are. Created and Updated are Unix seconds; Updated moves with every
// change the account reports for the entity. Values returned by Account are copies: changing
// them does not change the account.

// User is a person who makes changes: an office user or a technician.
type User struct {
	ID         int64  `json:"id"`
	Name       string `json:"name"`
	Email      string `json:"email"`
	Technician bool   `json:"isTech"`
}

// Company is a customer (or vendor) company; locations belong to one.
type Company struct {
	ID          int64  `json:"id"`
	Name        string `json:"name"`
	PhoneNumber string `json:"phoneNumber"`
	Status      string `json:"status"`
	Created     int64  `json:"created"`
	Updated     int64  `json:"updated"`
}

// Address is a street address.
type Address struct {
	Street     string `json:"street"`
	City       string `json:"city"`
	State      string `json:"state"`
	PostalCode string `json:"postalCode"`
}

// Location is a service location: a site of a company where assets stand and jobs happen.
type Location struct {
	ID          int64   `json:"id"`
	Name        string  `json:"name"`
	CompanyID   int64   `json:"companyId"`
	Address     Address `json:"address"`
	PhoneNumber string  `json:"phoneNumber"`
	Status      string  `json:"status"`
	Created     int64   `json:"created"`
	Updated     int64   `json:"updated"`
}

// AssetProperties are an asset's free-form properties; the simulator fills these three.
type AssetProperties struct {
	Serial       string `json:"serial"`
	Manufacturer string `json:"manufacturer"`
	Model        string `json:"model"`
}

// Asset is a piece of equipment at a location (an extinguisher, a backflow preventer, …).
type Asset struct {
	ID         int64           `json:"id"`
	LocationID int64           `json:"locationId"`
	ParentID   int64           `json:"parentId,omitempty"`
	Type       string          `json:"type"`
	Status     string          `json:"status"`
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
	Type        string `json:"type"`
	Status      string `json:"status"`
	Description string `json:"description"`
	LocationID  int64  `json:"locationId"`
	CustomerID  int64  `json:"customerId"`
	DueBy       int64  `json:"dueBy"`
	Created     int64  `json:"created"`
	Updated     int64  `json:"updated"`
}

// Appointment is a scheduled visit for a job: a time window and the technicians sent.
type Appointment struct {
	ID          int64   `json:"id"`
	JobID       int64   `json:"jobId"`
	Status      string  `json:"status"`
	WindowStart int64   `json:"windowStart"`
	WindowEnd   int64   `json:"windowEnd"`
	TechIDs     []int64 `json:"techIds"`
	Created     int64   `json:"created"`
	Updated     int64   `json:"updated"`
}

// ClockEvent is a technician's time on a job: travelling (enroute) or on site. ClockOut is
// 0 while the event is open; ElapsedTime is in seconds and set at clock-out.
type ClockEvent struct {
	ID            int64  `json:"id"`
	UserID        int64  `json:"userId"`
	JobID         int64  `json:"jobId"`
	AppointmentID int64  `json:"appointmentId"`
	Activity      string `json:"activity"`
	Source        string `json:"source"`
	ClockIn       int64  `json:"clockIn"`
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
	Severity    string `json:"severity"`
	Status      string `json:"status"`
	Description string `json:"description"`
	Created     int64  `json:"created"`
	Updated     int64  `json:"updated"`
}

func (a Appointment) clone() Appointment {
	a.TechIDs = slices.Clone(a.TechIDs)
	return a
}
