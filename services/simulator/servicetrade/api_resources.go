package servicetrade

import (
	"cmp"
	"net/http"
	"net/url"
	"slices"
	"strconv"
)

// apiResource is one entity type as the API serves it.
type apiResource[T any] struct {
	typ    string                // the URI segment: /api/<typ>/<id>
	plural string                // the list's key in data: jobs, clockEvents, …
	get    func(int64) (T, bool) // false for an unknown or deleted id
	all    func() []T
	key    func(T) (updated, id int64)
	// filters reads the type's own list filters; nil if it has none. An error names the
	// parameter and the problem.
	filters func(url.Values) (func(T) bool, *apiParamError)
}

func (a *API) routeResources(mux *http.ServeMux) {
	acct := a.acct
	routeResource(a, mux, apiResource[Job]{
		typ: TypeJob, plural: "jobs", get: acct.Job, all: acct.Jobs,
		key: func(v Job) (int64, int64) { return v.Updated, v.ID },
	})
	routeResource(a, mux, apiResource[Asset]{
		typ: TypeAsset, plural: "assets", get: acct.Asset, all: acct.Assets,
		key: func(v Asset) (int64, int64) { return v.Updated, v.ID },
	})
	routeResource(a, mux, apiResource[Location]{
		typ: TypeLocation, plural: "locations", get: acct.Location, all: acct.Locations,
		key: func(v Location) (int64, int64) { return v.Updated, v.ID },
	})
	routeResource(a, mux, apiResource[ClockEvent]{
		typ: TypeClock, plural: "clockEvents", get: acct.ClockEvent, all: acct.ClockEvents,
		key:     func(v ClockEvent) (int64, int64) { return v.Updated, v.ID },
		filters: clockFilters,
	})
	routeResource(a, mux, apiResource[Appointment]{
		typ: TypeAppointment, plural: "appointments", get: acct.Appointment, all: acct.Appointments,
		key: func(v Appointment) (int64, int64) { return v.Updated, v.ID },
	})
	routeResource(a, mux, apiResource[Deficiency]{
		typ: TypeDeficiency, plural: "deficiencies", get: acct.Deficiency, all: acct.Deficiencies,
		key: func(v Deficiency) (int64, int64) { return v.Updated, v.ID },
	})
	routeResource(a, mux, apiResource[Company]{
		typ: TypeCompany, plural: "companies", get: acct.Company, all: acct.Companies,
		key: func(v Company) (int64, int64) { return v.Updated, v.ID },
	})
}

func routeResource[T any](a *API, mux *http.ServeMux, res apiResource[T]) {
	mux.HandleFunc("GET /api/"+res.typ+"/{id}", a.authorized(func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
		if err != nil || id <= 0 {
			writeAPIError(w, http.StatusBadRequest, "id: want a positive integer", map[string]string{"id": "want a positive integer"})
			return
		}
		v, ok := res.get(id)
		if !ok {
			writeAPIError(w, http.StatusNotFound, res.typ+" "+strconv.FormatInt(id, 10)+" not found", nil)
			return
		}
		writeAPIData(w, v)
	}))
	mux.HandleFunc("GET /api/"+res.typ, a.authorized(func(w http.ResponseWriter, r *http.Request) {
		serveList(w, r, a, res)
	}))
}

// apiParamError is a query parameter the API cannot use.
type apiParamError struct{ param, problem string }

// apiListQuery is what every list understands.
type apiListQuery struct {
	page, limit     int
	updatedAfter    int64
	hasUpdatedAfter bool
}

// serveList answers one page of res's entities that pass the filters, ordered by update
// time, then id, so that pages are stable while the account does not change. A page past
// the last is empty, not an error. Paging is by offset, as ServiceTrade's: an entity
// updated during a walk moves to the end, so the walk may see it twice and, as the others
// shift, skip one.
func serveList[T any](w http.ResponseWriter, r *http.Request, a *API, res apiResource[T]) {
	q := r.URL.Query()
	lq, perr := a.parseListQuery(q)
	var keep func(T) bool
	if perr == nil && res.filters != nil {
		keep, perr = res.filters(q)
	}
	if perr != nil {
		writeAPIError(w, http.StatusBadRequest, perr.param+": "+perr.problem, map[string]string{perr.param: perr.problem})
		return
	}
	items := slices.DeleteFunc(res.all(), func(v T) bool {
		updated, _ := res.key(v)
		return (lq.hasUpdatedAfter && updated <= lq.updatedAfter) || (keep != nil && !keep(v))
	})
	slices.SortFunc(items, func(x, y T) int {
		xu, xid := res.key(x)
		yu, yid := res.key(y)
		return cmp.Or(cmp.Compare(xu, yu), cmp.Compare(xid, yid))
	})
	totalPages := (len(items) + lq.limit - 1) / lq.limit
	page := []T{}
	if lq.page <= totalPages {
		from := (lq.page - 1) * lq.limit
		page = items[from:min(from+lq.limit, len(items))]
	}
	writeAPIData(w, map[string]any{
		"page":       lq.page,
		"totalPages": totalPages,
		res.plural:   page,
	})
}

// parseListQuery reads page (from 1), limit (1 up to MaxPageSize; more is cut to it) and
// updatedAfter (Unix seconds; only entities updated strictly after it).
func (a *API) parseListQuery(q url.Values) (apiListQuery, *apiParamError) {
	lq := apiListQuery{page: 1, limit: a.cfg.PageSize}
	if v := q.Get("page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return lq, &apiParamError{"page", "want an integer from 1"}
		}
		lq.page = n
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return lq, &apiParamError{"limit", "want a positive integer"}
		}
		lq.limit = min(n, a.cfg.MaxPageSize)
	}
	if v := q.Get("updatedAfter"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return lq, &apiParamError{"updatedAfter", "want Unix seconds"}
		}
		lq.updatedAfter, lq.hasUpdatedAfter = n, true
	}
	return lq, nil
}

// clockFilters reads the clock event list's own filters: userId and jobId (exact),
// activity (enroute, onsite or offsite), and startTime and endTime (Unix seconds), which
// keep the events that clock in at or after startTime and before endTime, so that
// adjacent windows share no event. The window semantics are ours: ServiceTrade names the
// parameters but not their edges.
func clockFilters(q url.Values) (func(ClockEvent) bool, *apiParamError) {
	var tests []func(ClockEvent) bool
	for _, p := range []struct {
		param string
		test  func(c ClockEvent, n int64) bool
	}{
		{"userId", func(c ClockEvent, n int64) bool { return c.UserID == n }},
		{"jobId", func(c ClockEvent, n int64) bool { return c.JobID == n }},
		{"startTime", func(c ClockEvent, n int64) bool { return c.ClockIn >= n }},
		{"endTime", func(c ClockEvent, n int64) bool { return c.ClockIn < n }},
	} {
		v := q.Get(p.param)
		if v == "" {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, &apiParamError{p.param, "want an integer"}
		}
		tests = append(tests, func(c ClockEvent) bool { return p.test(c, n) })
	}
	if v := q.Get("activity"); v != "" {
		if v != ActivityEnroute && v != ActivityOnsite && v != ActivityOffsite {
			return nil, &apiParamError{"activity", "want enroute, onsite or offsite"}
		}
		tests = append(tests, func(c ClockEvent) bool { return c.Activity == v })
	}
	return func(c ClockEvent) bool {
		for _, t := range tests {
			if !t(c) {
				return false
			}
		}
		return true
	}, nil
}
