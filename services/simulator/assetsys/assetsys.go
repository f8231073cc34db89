// Package assetsys simulates the downstream asset registry that fieldstream keeps in step
// with ServiceTrade's assets and locations. The grouped write belongs to this sink, not to
// ServiceTrade (domain.md): PUT /locations/{locationId}/assets takes many assets of one
// location in one call and answers every item on its own, so one bad item is rejected
// while its neighbours apply.
//
//	PUT    /locations/{locationId}/assets  {"assets":[Asset…]} → 200 {"results":[Result…]}
//	PUT    /locations/{id}                 Location → 200 Result; 400 malformed; 422 invalid
//	GET    /locations/{id}                 → 200 Location, 404
//	GET    /assets/{id}                    → 200 Asset, 404
//	DELETE /assets/{id}?eventId=…          → 204, 404
//	GET    /admin/applied                  → Record
//	GET|PUT /admin/faults, GET /admin/fault-stats (see package fault)
//
// Every write carries an eventId. A write whose eventId was already applied to the same
// entity is answered as success with the outcome "duplicate" and not applied again; the
// eventId is scoped to the entity, so one event may legitimately touch several assets. A
// write older (by "updated", Unix seconds) than what the registry holds — including an
// asset it deleted — is answered "stale" and not applied, unless Config.AcceptStale makes
// the registry last-writer-wins; then it is applied and recorded as a violation, which is
// what tests assert never happens.
//
// Faults are injected before a request is handled, so a faulted request never changes
// anything — except under injected latency: a write whose client gives up waiting is
// still handled when the latency ends (the server has not read its body, so it cannot see
// the client leave), as on a real server. A timeout does not mean the write was not
// applied.
package assetsys

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"sync"

	"github.com/fieldstream/fieldstream/services/simulator/fault"
	"github.com/fieldstream/fieldstream/services/simulator/jsonapi"
)

// Asset statuses the registry accepts.
const (
	StatusActive   = "active"
	StatusInactive = "inactive"
)

// Outcomes of one write, in Result.Status.
const (
	OutcomeApplied   = "applied"
	OutcomeDuplicate = "duplicate"
	OutcomeStale     = "stale"
	OutcomeRejected  = "rejected"
)

// Operations in Applied.Op.
const (
	OpPutAsset    = "put_asset"
	OpPutLocation = "put_location"
	OpDeleteAsset = "delete_asset"
)

// DefaultMaxAssetsPerCall is the largest grouped write the registry takes by default.
const DefaultMaxAssetsPerCall = 100

// Asset is an asset as the registry takes and stores it. EventID is the event of the write
// that last changed it.
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

// Location is a service location as the registry takes and stores it.
type Location struct {
	ID        int64   `json:"id"`
	EventID   string  `json:"eventId"`
	CompanyID int64   `json:"companyId"`
	Name      string  `json:"name"`
	Address   Address `json:"address"`
	Status    string  `json:"status,omitempty"`
	Updated   int64   `json:"updated"`
}

// Result is the registry's answer for one write: an item of a grouped write, or a
// location. Error says why an item was rejected.
type Result struct {
	ID      int64  `json:"id"`
	EventID string `json:"eventId"`
	Status  string `json:"status"`
	Error   string `json:"error,omitempty"`
}

// Applied is one write the registry applied.
type Applied struct {
	Op         string `json:"op"`
	ID         int64  `json:"id"`
	EventID    string `json:"eventId"`
	LocationID int64  `json:"locationId,omitempty"`
	Updated    int64  `json:"updated,omitempty"`
}

// Record is everything the registry counted, as GET /admin/applied serves it.
type Record struct {
	Applied []Applied `json:"applied"`
	// Calls is the number of grouped writes that reached the registry (faulted requests
	// never do); Items the number of assets they carried.
	Calls      int      `json:"calls"`
	Items      int      `json:"items"`
	Duplicates int      `json:"duplicates"`
	Stale      int      `json:"stale"`
	Rejected   int      `json:"rejected"`
	Violations []string `json:"violations"`
}

// Config configures New; the zero value is a registry that refuses stale writes and takes
// groups of up to DefaultMaxAssetsPerCall.
type Config struct {
	// MaxAssetsPerCall is the largest grouped write; a larger one is refused whole with
	// 413. Default DefaultMaxAssetsPerCall.
	MaxAssetsPerCall int
	// AcceptStale makes the registry last-writer-wins, as a naive one is: a write older
	// than the stored entity is applied, and recorded as a violation.
	AcceptStale bool
}

// Validate reports a setting New would reject.
func (c Config) Validate() error {
	if c.MaxAssetsPerCall < 0 {
		return fmt.Errorf("assetsys: MaxAssetsPerCall %d: must not be negative", c.MaxAssetsPerCall)
	}
	return nil
}

// Registry is the simulated asset registry, an http.Handler. It is safe for concurrent use.
type Registry struct {
	cfg     Config
	faults  fault.Injector
	handler http.Handler

	mu        sync.Mutex
	assets    map[int64]Asset
	deleted   map[int64]int64 // id → updated of the asset when it was deleted
	locations map[int64]Location
	seen      map[writeKey]bool
	rec       Record
}

// writeKey identifies a write for idempotency: the eventId, scoped to the entity and the
// kind of write.
type writeKey struct {
	op      string
	id      int64
	eventID string
}

// New returns an empty registry.
func New(cfg Config) (*Registry, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.MaxAssetsPerCall == 0 {
		cfg.MaxAssetsPerCall = DefaultMaxAssetsPerCall
	}
	r := &Registry{
		cfg:       cfg,
		assets:    make(map[int64]Asset),
		deleted:   make(map[int64]int64),
		locations: make(map[int64]Location),
		seen:      make(map[writeKey]bool),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /locations/{locationId}/assets", r.putAssets)
	mux.HandleFunc("PUT /locations/{id}", r.putLocation)
	mux.HandleFunc("GET /locations/{id}", r.getLocation)
	mux.HandleFunc("GET /assets/{id}", r.getAsset)
	mux.HandleFunc("DELETE /assets/{id}", r.deleteAsset)
	mux.HandleFunc("GET /admin/applied", func(w http.ResponseWriter, _ *http.Request) {
		jsonapi.WriteJSON(w, http.StatusOK, r.Record())
	})
	mux.Handle(fault.AdminPrefix, r.faults.AdminHandler())
	r.handler = r.faults.Wrap(mux)
	return r, nil
}

// ServeHTTP serves the registry's API, with the injected faults.
func (r *Registry) ServeHTTP(w http.ResponseWriter, req *http.Request) { r.handler.ServeHTTP(w, req) }

// Faults is the registry's fault injector.
func (r *Registry) Faults() *fault.Injector { return &r.faults }

// Record returns a copy of everything the registry counted.
func (r *Registry) Record() Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	rec := r.rec
	rec.Applied = append([]Applied{}, rec.Applied...)
	rec.Violations = append([]string{}, rec.Violations...)
	return rec
}

// Applied returns the writes applied so far, in order.
func (r *Registry) Applied() []Applied { return r.Record().Applied }

// Calls returns the number of grouped writes that reached the registry.
func (r *Registry) Calls() int { r.mu.Lock(); defer r.mu.Unlock(); return r.rec.Calls }

// Items returns the number of assets the grouped writes carried.
func (r *Registry) Items() int { r.mu.Lock(); defer r.mu.Unlock(); return r.rec.Items }

// Duplicates returns the number of writes answered as duplicates.
func (r *Registry) Duplicates() int { r.mu.Lock(); defer r.mu.Unlock(); return r.rec.Duplicates }

// Stale returns the number of writes answered "stale" and not applied.
func (r *Registry) Stale() int { r.mu.Lock(); defer r.mu.Unlock(); return r.rec.Stale }

// Rejected returns the number of writes rejected as invalid (items and locations).
func (r *Registry) Rejected() int { r.mu.Lock(); defer r.mu.Unlock(); return r.rec.Rejected }

// Violations describes every older write that overwrote a newer one (only possible with
// Config.AcceptStale).
func (r *Registry) Violations() []string { return r.Record().Violations }

// Asset returns the stored asset id.
func (r *Registry) Asset(id int64) (Asset, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	a, ok := r.assets[id]
	a.Properties = maps.Clone(a.Properties)
	return a, ok
}

// Location returns the stored location id.
func (r *Registry) Location(id int64) (Location, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	l, ok := r.locations[id]
	return l, ok
}

func (r *Registry) putAssets(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	r.rec.Calls++
	r.mu.Unlock()
	locationID, ok := jsonapi.PathID(w, req, "locationId")
	if !ok {
		return
	}
	var body struct {
		Assets []json.RawMessage `json:"assets"`
	}
	if !jsonapi.Decode(w, req, maxBody, &body) {
		return
	}
	switch n := len(body.Assets); {
	case n == 0:
		jsonapi.WriteError(w, http.StatusBadRequest, "no assets")
		return
	case n > r.cfg.MaxAssetsPerCall:
		jsonapi.WriteError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("%d assets: at most %d per call", n, r.cfg.MaxAssetsPerCall))
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rec.Items += len(body.Assets)
	results := make([]Result, len(body.Assets))
	for i, raw := range body.Assets {
		var a Asset
		if err := json.Unmarshal(raw, &a); err != nil {
			r.rec.Rejected++
			results[i] = Result{Status: OutcomeRejected, Error: "malformed asset: " + err.Error()}
			continue
		}
		results[i] = r.putAssetLocked(locationID, a)
	}
	jsonapi.WriteJSON(w, http.StatusOK, struct {
		Results []Result `json:"results"`
	}{results})
}

func (r *Registry) putAssetLocked(locationID int64, a Asset) Result {
	res := Result{ID: a.ID, EventID: a.EventID}
	if err := validateAsset(locationID, a); err != nil {
		r.rec.Rejected++
		res.Status, res.Error = OutcomeRejected, err.Error()
		return res
	}
	key := writeKey{OpPutAsset, a.ID, a.EventID}
	if r.seen[key] {
		r.rec.Duplicates++
		res.Status = OutcomeDuplicate
		return res
	}
	var stored int64
	cur, exists := r.assets[a.ID]
	if exists {
		stored = cur.Updated
	} else if u, ok := r.deleted[a.ID]; ok {
		stored, exists = u, true
	}
	if exists && a.Updated < stored {
		if !r.cfg.AcceptStale {
			r.rec.Stale++
			res.Status = OutcomeStale
			return res
		}
		r.rec.Violations = append(r.rec.Violations, fmt.Sprintf("asset %d: event %s (updated %d) overwrote updated %d", a.ID, a.EventID, a.Updated, stored))
	}
	a.Properties = maps.Clone(a.Properties)
	r.assets[a.ID] = a
	delete(r.deleted, a.ID)
	r.seen[key] = true
	r.rec.Applied = append(r.rec.Applied, Applied{Op: OpPutAsset, ID: a.ID, EventID: a.EventID, LocationID: a.LocationID, Updated: a.Updated})
	res.Status = OutcomeApplied
	return res
}

func validateAsset(locationID int64, a Asset) error {
	switch {
	case a.ID <= 0:
		return fmt.Errorf("id %d: must be positive", a.ID)
	case a.EventID == "":
		return errors.New("eventId is required")
	case a.LocationID != locationID:
		return fmt.Errorf("locationId %d does not match the path's %d", a.LocationID, locationID)
	case a.Type == "":
		return errors.New("type is required")
	case a.Status != StatusActive && a.Status != StatusInactive:
		return fmt.Errorf("status %q: must be %s or %s", a.Status, StatusActive, StatusInactive)
	case a.ParentID < 0 || a.ParentID == a.ID:
		return fmt.Errorf("parentId %d: not a parent of asset %d", a.ParentID, a.ID)
	case a.Updated <= 0:
		return fmt.Errorf("updated %d: must be Unix seconds", a.Updated)
	}
	return nil
}

func (r *Registry) putLocation(w http.ResponseWriter, req *http.Request) {
	id, ok := jsonapi.PathID(w, req, "id")
	if !ok {
		return
	}
	var l Location
	if !jsonapi.Decode(w, req, maxBody, &l) {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	res := Result{ID: l.ID, EventID: l.EventID}
	if err := validateLocation(id, l); err != nil {
		r.rec.Rejected++
		jsonapi.WriteError(w, http.StatusUnprocessableEntity, err.Error())
		return
	}
	key := writeKey{OpPutLocation, l.ID, l.EventID}
	stored, exists := r.locations[l.ID]
	switch {
	case r.seen[key]:
		r.rec.Duplicates++
		res.Status = OutcomeDuplicate
	case exists && l.Updated < stored.Updated && !r.cfg.AcceptStale:
		r.rec.Stale++
		res.Status = OutcomeStale
	default:
		if exists && l.Updated < stored.Updated {
			r.rec.Violations = append(r.rec.Violations, fmt.Sprintf("location %d: event %s (updated %d) overwrote updated %d", l.ID, l.EventID, l.Updated, stored.Updated))
		}
		r.locations[l.ID] = l
		r.seen[key] = true
		r.rec.Applied = append(r.rec.Applied, Applied{Op: OpPutLocation, ID: l.ID, EventID: l.EventID, Updated: l.Updated})
		res.Status = OutcomeApplied
	}
	jsonapi.WriteJSON(w, http.StatusOK, res)
}

func validateLocation(id int64, l Location) error {
	switch {
	case l.ID <= 0 || l.ID != id:
		return fmt.Errorf("id %d does not match the path's %d", l.ID, id)
	case l.EventID == "":
		return errors.New("eventId is required")
	case l.CompanyID <= 0:
		return fmt.Errorf("companyId %d: must be positive", l.CompanyID)
	case l.Name == "":
		return errors.New("name is required")
	case l.Updated <= 0:
		return fmt.Errorf("updated %d: must be Unix seconds", l.Updated)
	}
	return nil
}

func (r *Registry) getLocation(w http.ResponseWriter, req *http.Request) {
	id, ok := jsonapi.PathID(w, req, "id")
	if !ok {
		return
	}
	l, ok := r.Location(id)
	if !ok {
		jsonapi.WriteError(w, http.StatusNotFound, fmt.Sprintf("location %d not found", id))
		return
	}
	jsonapi.WriteJSON(w, http.StatusOK, l)
}

func (r *Registry) getAsset(w http.ResponseWriter, req *http.Request) {
	id, ok := jsonapi.PathID(w, req, "id")
	if !ok {
		return
	}
	a, ok := r.Asset(id)
	if !ok {
		jsonapi.WriteError(w, http.StatusNotFound, fmt.Sprintf("asset %d not found", id))
		return
	}
	jsonapi.WriteJSON(w, http.StatusOK, a)
}

func (r *Registry) deleteAsset(w http.ResponseWriter, req *http.Request) {
	id, ok := jsonapi.PathID(w, req, "id")
	if !ok {
		return
	}
	eventID := req.URL.Query().Get("eventId")
	if eventID == "" {
		jsonapi.WriteError(w, http.StatusBadRequest, "eventId query parameter is required")
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	key := writeKey{OpDeleteAsset, id, eventID}
	if r.seen[key] {
		r.rec.Duplicates++
		w.WriteHeader(http.StatusNoContent)
		return
	}
	a, ok := r.assets[id]
	if !ok {
		jsonapi.WriteError(w, http.StatusNotFound, fmt.Sprintf("asset %d not found", id))
		return
	}
	delete(r.assets, id)
	r.deleted[id] = a.Updated
	r.seen[key] = true
	r.rec.Applied = append(r.rec.Applied, Applied{Op: OpDeleteAsset, ID: id, EventID: eventID, LocationID: a.LocationID})
	w.WriteHeader(http.StatusNoContent)
}
