// Package workordersys simulates the downstream work-order system that fieldstream keeps
// in step with ServiceTrade's jobs.
//
//	PUT    /work-orders/{id}            WorkOrder → 200 WorkOrder; 400 malformed; 422 invalid
//	DELETE /work-orders/{id}?eventId=…  → 204; 404 if absent (410 for one deleted before,
//	                                     with Config.GoneAfterDelete)
//	GET    /work-orders/{id}            → 200 WorkOrder; 404 (or 410)
//	GET    /admin/applied               → Record
//	GET|PUT /admin/faults, GET /admin/fault-stats (see package fault)
//
// Every write carries an eventId. A write whose eventId was already applied to the same
// work order is answered as success (with the header Idempotent-Replayed: true on a PUT)
// and not applied again. Like most systems it is last-writer-wins: an upsert older (by
// "updated", Unix seconds) than the stored work order, or than one it deleted, is applied
// all the same — and recorded as a violation, which is what tests assert never happens.
//
// Faults are injected before a request is handled, so a faulted request never changes
// anything — except under injected latency: a write whose client gives up waiting is
// still handled when the latency ends (the server has not read its body, so it cannot see
// the client leave), as on a real server. A timeout does not mean the write was not
// applied.
package workordersys

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"

	"github.com/fieldstream/fieldstream/services/simulator/fault"
	"github.com/fieldstream/fieldstream/services/simulator/jsonapi"
)

// Operations in Applied.Op.
const (
	OpUpsert = "upsert"
	OpDelete = "delete"
)

// ReplayHeader is set to "true" on the answer to a PUT that was a duplicate.
const ReplayHeader = "Idempotent-Replayed"

// DefaultStatuses and DefaultTypes are the work-order (ServiceTrade job) vocabularies the
// system accepts unless Config says otherwise (domain.md).
var (
	DefaultStatuses = []string{"new", "scheduled", "canceled", "bidding", "completed", "pending_invoice", "sending_invoice", "closed"}
	DefaultTypes    = []string{"inspection", "repair", "service_call", "emergency_service_call", "preventative_maintenance", "installation"}
)

// WorkOrder is a work order as the system takes and stores it. EventID is the event of
// the write that last changed it.
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

// Applied is one write the system applied.
type Applied struct {
	Op      string `json:"op"`
	ID      int64  `json:"id"`
	EventID string `json:"eventId"`
	Status  string `json:"status,omitempty"`
	Updated int64  `json:"updated,omitempty"`
}

// Record is everything the system counted, as GET /admin/applied serves it.
type Record struct {
	Applied []Applied `json:"applied"`
	// Calls is the number of writes (PUT and DELETE) that reached the system; faulted
	// requests never do.
	Calls      int      `json:"calls"`
	Duplicates int      `json:"duplicates"`
	Rejected   int      `json:"rejected"`
	Violations []string `json:"violations"`
}

// Config configures New; the zero value takes ServiceTrade's vocabularies and answers 404
// for every work order it does not hold.
type Config struct {
	// Statuses a work order may have. Default DefaultStatuses.
	Statuses []string
	// Types a work order may have. Default DefaultTypes.
	Types []string
	// GoneAfterDelete answers 410 Gone, instead of 404, to a DELETE or GET of a work order
	// that was deleted before.
	GoneAfterDelete bool
}

// Validate reports a setting New would reject.
func (c Config) Validate() error {
	if slices.Contains(c.Statuses, "") || slices.Contains(c.Types, "") {
		return errors.New("workordersys: empty status or type")
	}
	return nil
}

// System is the simulated work-order system, an http.Handler. It is safe for concurrent
// use.
type System struct {
	cfg     Config
	faults  fault.Injector
	handler http.Handler

	mu      sync.Mutex
	orders  map[int64]WorkOrder
	deleted map[int64]int64 // id → updated of the work order when it was deleted
	seen    map[writeKey]bool
	rec     Record
}

type writeKey struct {
	op      string
	id      int64
	eventID string
}

// New returns an empty system.
func New(cfg Config) (*System, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Statuses == nil {
		cfg.Statuses = DefaultStatuses
	}
	if cfg.Types == nil {
		cfg.Types = DefaultTypes
	}
	cfg.Statuses, cfg.Types = slices.Clone(cfg.Statuses), slices.Clone(cfg.Types)
	s := &System{
		cfg:     cfg,
		orders:  make(map[int64]WorkOrder),
		deleted: make(map[int64]int64),
		seen:    make(map[writeKey]bool),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /work-orders/{id}", s.upsert)
	mux.HandleFunc("DELETE /work-orders/{id}", s.delete)
	mux.HandleFunc("GET /work-orders/{id}", s.get)
	mux.HandleFunc("GET /admin/applied", func(w http.ResponseWriter, _ *http.Request) {
		jsonapi.WriteJSON(w, http.StatusOK, s.Record())
	})
	mux.Handle(fault.AdminPrefix, s.faults.AdminHandler())
	s.handler = s.faults.Wrap(mux)
	return s, nil
}

// LoseData forgets every work order stored at or after since (by their updated time) and
// the event ids that wrote them, as a restore from an older backup would: the writes were
// acknowledged, then lost. Operators recover from it with a replay. It returns how many
// work orders were lost.
func (s *System) LoseData(since int64) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	lost := 0
	for id, wo := range s.orders {
		if wo.Updated >= since {
			delete(s.orders, id)
			lost++
		}
	}
	for k := range s.seen {
		if _, ok := s.orders[k.id]; !ok {
			delete(s.seen, k)
		}
	}
	return lost
}

// ServeHTTP serves the system's API, with the injected faults.
func (s *System) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Faults is the system's fault injector.
func (s *System) Faults() *fault.Injector { return &s.faults }

// Record returns a copy of everything the system counted.
func (s *System) Record() Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := s.rec
	rec.Applied = append([]Applied{}, rec.Applied...)
	rec.Violations = append([]string{}, rec.Violations...)
	return rec
}

// Applied returns the writes applied so far, in order.
func (s *System) Applied() []Applied { return s.Record().Applied }

// Calls returns the number of writes that reached the system.
func (s *System) Calls() int { s.mu.Lock(); defer s.mu.Unlock(); return s.rec.Calls }

// Duplicates returns the number of writes answered as duplicates.
func (s *System) Duplicates() int { s.mu.Lock(); defer s.mu.Unlock(); return s.rec.Duplicates }

// Rejected returns the number of upserts refused as invalid (400 or 422).
func (s *System) Rejected() int { s.mu.Lock(); defer s.mu.Unlock(); return s.rec.Rejected }

// Violations describes every older upsert that overwrote (or brought back) a newer work
// order.
func (s *System) Violations() []string { return s.Record().Violations }

// WorkOrder returns the stored work order id.
func (s *System) WorkOrder(id int64) (WorkOrder, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	wo, ok := s.orders[id]
	return wo, ok
}

func (s *System) upsert(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.rec.Calls++
	s.mu.Unlock()
	id, ok := jsonapi.PathID(w, r, "id")
	if !ok {
		return
	}
	var wo WorkOrder
	if !jsonapi.Decode(w, r, maxBody, &wo) {
		s.mu.Lock()
		s.rec.Rejected++
		s.mu.Unlock()
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.validate(id, wo); err != nil {
		s.rec.Rejected++
		jsonapi.WriteError(w, http.StatusUnprocessableEntity, err.Error())
		return
	}
	key := writeKey{OpUpsert, wo.ID, wo.EventID}
	if s.seen[key] {
		s.rec.Duplicates++
		w.Header().Set(ReplayHeader, "true")
		jsonapi.WriteJSON(w, http.StatusOK, s.orders[wo.ID])
		return
	}
	if old, ok := s.orders[wo.ID]; ok && wo.Updated < old.Updated {
		s.rec.Violations = append(s.rec.Violations, fmt.Sprintf("work order %d: event %s (updated %d) overwrote updated %d", wo.ID, wo.EventID, wo.Updated, old.Updated))
	} else if gone, ok := s.deleted[wo.ID]; ok && wo.Updated < gone {
		s.rec.Violations = append(s.rec.Violations, fmt.Sprintf("work order %d: event %s (updated %d) brought back one deleted at updated %d", wo.ID, wo.EventID, wo.Updated, gone))
	}
	s.orders[wo.ID] = wo
	delete(s.deleted, wo.ID)
	s.seen[key] = true
	s.rec.Applied = append(s.rec.Applied, Applied{Op: OpUpsert, ID: wo.ID, EventID: wo.EventID, Status: wo.Status, Updated: wo.Updated})
	jsonapi.WriteJSON(w, http.StatusOK, wo)
}

func (s *System) validate(id int64, wo WorkOrder) error {
	switch {
	case wo.ID != id:
		return fmt.Errorf("id %d does not match the path's %d", wo.ID, id)
	case wo.EventID == "":
		return errors.New("eventId is required")
	case !slices.Contains(s.cfg.Statuses, wo.Status):
		return fmt.Errorf("status %q: not one of %v", wo.Status, s.cfg.Statuses)
	case !slices.Contains(s.cfg.Types, wo.Type):
		return fmt.Errorf("type %q: not one of %v", wo.Type, s.cfg.Types)
	case wo.LocationID <= 0:
		return fmt.Errorf("locationId %d: must be positive", wo.LocationID)
	case wo.CustomerID < 0 || wo.ContractID < 0 || wo.DueBy < 0:
		return errors.New("customerId, contractId and dueBy must not be negative")
	case wo.Updated <= 0:
		return fmt.Errorf("updated %d: must be Unix seconds", wo.Updated)
	}
	return nil
}

func (s *System) delete(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.rec.Calls++
	s.mu.Unlock()
	id, ok := jsonapi.PathID(w, r, "id")
	if !ok {
		return
	}
	eventID := r.URL.Query().Get("eventId")
	if eventID == "" {
		jsonapi.WriteError(w, http.StatusBadRequest, "eventId query parameter is required")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	key := writeKey{OpDelete, id, eventID}
	if s.seen[key] {
		s.rec.Duplicates++
		w.WriteHeader(http.StatusNoContent)
		return
	}
	wo, ok := s.orders[id]
	if !ok {
		s.writeAbsent(w, id)
		return
	}
	delete(s.orders, id)
	s.deleted[id] = wo.Updated
	s.seen[key] = true
	s.rec.Applied = append(s.rec.Applied, Applied{Op: OpDelete, ID: id, EventID: eventID})
	w.WriteHeader(http.StatusNoContent)
}

func (s *System) get(w http.ResponseWriter, r *http.Request) {
	id, ok := jsonapi.PathID(w, r, "id")
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	wo, ok := s.orders[id]
	if !ok {
		s.writeAbsent(w, id)
		return
	}
	jsonapi.WriteJSON(w, http.StatusOK, wo)
}

// writeAbsent answers for a work order the system does not hold; s.mu is held.
func (s *System) writeAbsent(w http.ResponseWriter, id int64) {
	if _, gone := s.deleted[id]; gone && s.cfg.GoneAfterDelete {
		jsonapi.WriteError(w, http.StatusGone, fmt.Sprintf("work order %d was deleted", id))
		return
	}
	jsonapi.WriteError(w, http.StatusNotFound, fmt.Sprintf("work order %d not found", id))
}
