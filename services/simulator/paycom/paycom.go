// Package paycom simulates a Paycom-style payroll system, the sink of fieldstream's time
// entries (domain.md).
//
//	POST /api/v1.1/punchimport  [Punch…] → 200 envelope with a punchId per punch;
//	                            400 envelope, nothing imported, if any punch is invalid
//	GET  /api/v1.1/punches?eecode=&startdate=&enddate=&page=&pagesize=
//	                            → 200 envelope (last page) or 206 (more pages remain)
//	GET  /admin/applied         → Record
//	GET|PUT /admin/faults, GET /admin/fault-stats (see package fault)
//
// The API answers only HTTP Basic auth with the configured SID and token (else 401), and
// always in the envelope {"result","data","errors","errorCount","records"}.
//
// A punch import is all or nothing, as the real one is: one invalid punch — an unknown
// employee code, a punch type other than ID (clock in) or OD (clock out), a punch time that
// is not Unix seconds in a string, an entry type other than 1, or a clock-out earlier than
// the employee's open clock-in — rejects the whole batch, and the errors say what was
// wrong but not which punch, so a client must split the batch to find it. A punch identical
// to one already imported (same employee, time and type) is not imported again: it is
// answered with the existing punchId and counted as a duplicate — unless
// Config.ImportIdentical, which imports it again.
//
// A punch imported with a time earlier than the employee's latest imported punch is
// accepted, as payroll systems accept late punches, and recorded as late: a consumer that
// retries one clock event while the employee's next one goes through imports it late, which
// is correct, so tests report late punches rather than fail on them.
//
// Faults are injected before a request is handled, so a faulted request never changes
// anything — except under injected latency: an import whose client gives up waiting is
// still handled when the latency ends (the server has not read its body, so it cannot see
// the client leave), as on a real server. A timeout does not mean the punches were not
// applied.
package paycom

import (
	"cmp"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync"

	"github.com/fieldstream/fieldstream/services/simulator/fault"
)

// Punch types and the one entry type the import takes.
const (
	PunchIn        = "ID"
	PunchOut       = "OD"
	EntryTypePunch = 1
)

// MaxPageSize is the largest pagesize GET punches takes.
const MaxPageSize = 500

// DefaultPunchIDBase is the first punchId by default: above 2^53, so that a client that
// reads ids as float64 gets them wrong.
const DefaultPunchIDBase int64 = 1<<53 + 1

// Import error messages. Like Paycom's they name what was wrong, never which punch.
const (
	MsgUnknownEmployee = "Employee code not found"
	MsgPunchType       = "Punch type must be ID or OD"
	MsgPunchTime       = "Punch time must be a Unix timestamp"
	MsgEntryType       = "Entry type is not supported"
	MsgClockOutOrder   = "Clock out precedes the open clock in"
)

// Applied is one imported punch.
type Applied struct {
	PunchID   int64  `json:"punchId"`
	EECode    string `json:"eecode"`
	EntryType int    `json:"entrytype"`
	PunchTime int64  `json:"punchtime"`
	PunchType string `json:"punchtype"`
	Timezone  string `json:"timezone"`
}

// Record is everything the payroll counted, as GET /admin/applied serves it.
type Record struct {
	Applied []Applied `json:"applied"`
	// Calls is the number of punch imports that reached the payroll authenticated (faulted
	// requests never do); Items the number of punches they carried; Rejected the number
	// of imports refused whole.
	Calls       int      `json:"calls"`
	Items       int      `json:"items"`
	Duplicates  int      `json:"duplicates"`
	Rejected    int      `json:"rejected"`
	LatePunches []string `json:"late_punches"`
}

// Config configures New.
type Config struct {
	// SID and Token are the Basic auth credentials the API takes. Required.
	SID, Token string
	// Employees are the known employee codes (eecode). Required.
	Employees []string
	// PunchIDBase is the first punchId. Default DefaultPunchIDBase.
	PunchIDBase int64
	// ImportIdentical imports a punch identical to one imported before (same employee,
	// time and type) again, under a new punchId, instead of answering the existing one:
	// a payroll system without that safeguard, which domain.md does not promise. Tests set
	// it to show that fieldstream does not import a punch twice on its own.
	ImportIdentical bool
}

// Validate reports a setting New would reject.
func (c Config) Validate() error {
	var errs []error
	if c.SID == "" || c.Token == "" {
		errs = append(errs, errors.New("paycom: SID and Token are required"))
	}
	if len(c.Employees) == 0 || slices.Contains(c.Employees, "") {
		errs = append(errs, errors.New("paycom: Employees must be non-empty employee codes"))
	}
	if c.PunchIDBase < 0 {
		errs = append(errs, fmt.Errorf("paycom: PunchIDBase %d: must not be negative", c.PunchIDBase))
	}
	return errors.Join(errs...)
}

// Payroll is the simulated payroll system, an http.Handler. It is safe for concurrent use.
type Payroll struct {
	cfg     Config
	faults  fault.Injector
	handler http.Handler

	mu        sync.Mutex
	employees map[string]employee
	byKey     map[punchKey]int64
	nextID    int64
	rec       Record
}

// employee is what the import checks punches against.
type employee struct {
	open       bool  // the latest clock-in has no clock-out yet
	openIn     int64 // its time
	hasPunches bool  // any punch imported
	latest     int64 // time of the latest punch imported
}

type punchKey struct {
	eecode    string
	punchTime int64
	punchType string
}

// New returns a payroll with no punches.
func New(cfg Config) (*Payroll, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.PunchIDBase == 0 {
		cfg.PunchIDBase = DefaultPunchIDBase
	}
	p := &Payroll{
		cfg:       cfg,
		employees: make(map[string]employee, len(cfg.Employees)),
		byKey:     make(map[punchKey]int64),
		nextID:    cfg.PunchIDBase,
	}
	for _, e := range cfg.Employees {
		p.employees[e] = employee{}
	}
	api := http.NewServeMux()
	api.HandleFunc("POST /api/v1.1/punchimport", p.importPunches)
	api.HandleFunc("GET /api/v1.1/punches", p.listPunches)
	mux := http.NewServeMux()
	mux.Handle("/", p.authenticated(api))
	mux.HandleFunc("GET /admin/applied", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, p.Record())
	})
	mux.Handle(fault.AdminPrefix, p.faults.AdminHandler())
	p.handler = p.faults.Wrap(mux)
	return p, nil
}

// ServeHTTP serves the payroll's API, with the injected faults.
func (p *Payroll) ServeHTTP(w http.ResponseWriter, r *http.Request) { p.handler.ServeHTTP(w, r) }

// Faults is the payroll's fault injector.
func (p *Payroll) Faults() *fault.Injector { return &p.faults }

// Record returns a copy of everything the payroll counted.
func (p *Payroll) Record() Record {
	p.mu.Lock()
	defer p.mu.Unlock()
	rec := p.rec
	rec.Applied = append([]Applied{}, rec.Applied...)
	rec.LatePunches = append([]string{}, rec.LatePunches...)
	return rec
}

// Applied returns the punches imported so far, in import order.
func (p *Payroll) Applied() []Applied { return p.Record().Applied }

// Calls returns the number of punch imports that reached the payroll.
func (p *Payroll) Calls() int { p.mu.Lock(); defer p.mu.Unlock(); return p.rec.Calls }

// Items returns the number of punches the imports carried.
func (p *Payroll) Items() int { p.mu.Lock(); defer p.mu.Unlock(); return p.rec.Items }

// Duplicates returns the number of punches answered with an existing punchId.
func (p *Payroll) Duplicates() int { p.mu.Lock(); defer p.mu.Unlock(); return p.rec.Duplicates }

// Rejected returns the number of imports refused whole.
func (p *Payroll) Rejected() int { p.mu.Lock(); defer p.mu.Unlock(); return p.rec.Rejected }

// LatePunches describes every punch imported after a later punch of the same employee.
func (p *Payroll) LatePunches() []string { return p.Record().LatePunches }

func (p *Payroll) authenticated(next http.Handler) http.Handler {
	sid, token := []byte(p.cfg.SID), []byte(p.cfg.Token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, pw, ok := r.BasicAuth()
		// Both comparisons run, so the answer's timing does not say which part was wrong.
		okSID := subtle.ConstantTimeCompare([]byte(u), sid)
		okToken := subtle.ConstantTimeCompare([]byte(pw), token)
		if !ok || okSID&okToken != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="paycom"`)
			writeEnvelope(w, http.StatusUnauthorized, nil, []string{"Unauthorized"}, 0)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// wirePunch is a punch as the API takes and gives it: the time is a string.
type wirePunch struct {
	PunchID   int64  `json:"punchId,omitempty"`
	EECode    string `json:"eecode"`
	EntryType int    `json:"entrytype"`
	PunchTime string `json:"punchtime"`
	PunchType string `json:"punchtype"`
	Timezone  string `json:"timezone"`
}

func (p *Payroll) importPunches(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	p.rec.Calls++
	p.mu.Unlock()
	var batch []wirePunch
	msg := ""
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody)).Decode(&batch); err != nil {
		msg = "Invalid request body"
	} else if len(batch) == 0 {
		msg = "No punches"
	}
	if msg != "" {
		p.mu.Lock()
		p.rec.Rejected++
		p.mu.Unlock()
		reject(w, []string{msg})
		return
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	p.rec.Items += len(batch)
	// Check the whole batch against a copy of the employees' state before changing
	// anything: the import is all or nothing.
	staged := make(map[string]employee)
	stagedKeys := make(map[punchKey]int64)
	ids := make([]int64, len(batch))
	var fresh []Applied
	var errs []string
	dups := 0
	nextID := p.nextID
	for i, wp := range batch {
		a, msg := p.parse(wp)
		if msg != "" {
			errs = append(errs, msg)
			continue
		}
		key := punchKey{a.EECode, a.PunchTime, a.PunchType}
		if id, ok := p.byKey[key]; ok && !p.cfg.ImportIdentical {
			ids[i] = id
			dups++
			continue
		}
		if id, ok := stagedKeys[key]; ok && !p.cfg.ImportIdentical {
			ids[i] = id
			dups++
			continue
		}
		e, ok := staged[a.EECode]
		if !ok {
			e = p.employees[a.EECode]
		}
		if a.PunchType == PunchOut && e.open && a.PunchTime < e.openIn {
			errs = append(errs, MsgClockOutOrder)
			continue
		}
		if a.PunchType == PunchIn {
			e.open, e.openIn = true, a.PunchTime
		} else {
			e.open = false
		}
		staged[a.EECode] = e
		a.PunchID = nextID
		nextID++
		stagedKeys[key] = a.PunchID
		ids[i] = a.PunchID
		fresh = append(fresh, a)
	}
	if len(errs) > 0 {
		p.rec.Rejected++
		reject(w, errs)
		return
	}

	p.nextID = nextID
	p.rec.Duplicates += dups
	for _, a := range fresh {
		e := p.employees[a.EECode]
		if e.hasPunches && a.PunchTime < e.latest {
			p.rec.LatePunches = append(p.rec.LatePunches, fmt.Sprintf("employee %s: %s punch %d at %d imported after one at %d", a.EECode, a.PunchType, a.PunchID, a.PunchTime, e.latest))
		}
		e.hasPunches, e.latest = true, max(e.latest, a.PunchTime)
		p.employees[a.EECode] = e
		p.byKey[punchKey{a.EECode, a.PunchTime, a.PunchType}] = a.PunchID
		p.rec.Applied = append(p.rec.Applied, a)
	}
	for code, e := range staged {
		cur := p.employees[code]
		cur.open, cur.openIn = e.open, e.openIn
		p.employees[code] = cur
	}
	data := make([]wirePunch, len(batch))
	for i, wp := range batch {
		data[i] = wp
		data[i].PunchID = ids[i]
	}
	writeEnvelope(w, http.StatusOK, data, nil, len(data))
}

// parse checks one punch on its own; p.mu is held.
func (p *Payroll) parse(wp wirePunch) (Applied, string) {
	if _, ok := p.employees[wp.EECode]; !ok {
		return Applied{}, MsgUnknownEmployee
	}
	if wp.PunchType != PunchIn && wp.PunchType != PunchOut {
		return Applied{}, MsgPunchType
	}
	t, ok := unixSeconds(wp.PunchTime)
	if !ok {
		return Applied{}, MsgPunchTime
	}
	if wp.EntryType != EntryTypePunch {
		return Applied{}, MsgEntryType
	}
	return Applied{EECode: wp.EECode, EntryType: wp.EntryType, PunchTime: t, PunchType: wp.PunchType, Timezone: wp.Timezone}, ""
}

// unixSeconds parses decimal digits only: no sign, no fraction, no date.
func unixSeconds(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	t, err := strconv.ParseInt(s, 10, 64)
	return t, err == nil && t > 0
}

// reject answers a refused import: nothing was imported.
func reject(w http.ResponseWriter, errs []string) {
	writeEnvelope(w, http.StatusBadRequest, []wirePunch{}, errs, 0)
}

func (p *Payroll) listPunches(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	bad := func(msg string) { writeEnvelope(w, http.StatusBadRequest, nil, []string{msg}, 0) }
	page, pageSize := 1, MaxPageSize
	if v := q.Get("page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			bad("page must be a positive integer")
			return
		}
		page = n
	}
	if v := q.Get("pagesize"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxPageSize {
			bad(fmt.Sprintf("pagesize must be 1 to %d", MaxPageSize))
			return
		}
		pageSize = n
	}
	from, to := int64(0), int64(1<<63-1)
	for _, b := range []struct {
		name string
		v    *int64
	}{{"startdate", &from}, {"enddate", &to}} {
		if v := q.Get(b.name); v != "" {
			t, ok := unixSeconds(v)
			if !ok {
				bad(b.name + " must be a Unix timestamp")
				return
			}
			*b.v = t
		}
	}
	eecode := q.Get("eecode")

	p.mu.Lock()
	if _, ok := p.employees[eecode]; eecode != "" && !ok {
		p.mu.Unlock()
		writeEnvelope(w, http.StatusNotFound, nil, []string{MsgUnknownEmployee}, 0)
		return
	}
	var match []Applied
	for _, a := range p.rec.Applied {
		if (eecode == "" || a.EECode == eecode) && a.PunchTime >= from && a.PunchTime <= to {
			match = append(match, a)
		}
	}
	p.mu.Unlock()
	slices.SortFunc(match, func(a, b Applied) int {
		if a.PunchTime != b.PunchTime {
			return cmp.Compare(a.PunchTime, b.PunchTime)
		}
		return cmp.Compare(a.PunchID, b.PunchID)
	})
	start := min(len(match), (page-1)*pageSize)
	end := min(len(match), start+pageSize)
	data := make([]wirePunch, 0, end-start)
	for _, a := range match[start:end] {
		data = append(data, wirePunch{PunchID: a.PunchID, EECode: a.EECode, EntryType: a.EntryType,
			PunchTime: strconv.FormatInt(a.PunchTime, 10), PunchType: a.PunchType, Timezone: a.Timezone})
	}
	status := http.StatusOK
	if end < len(match) {
		status = http.StatusPartialContent
	}
	writeEnvelope(w, status, data, nil, len(data))
}

// maxBody bounds a request body: thousands of punches fit.
const maxBody = 4 << 20

type envelope struct {
	Result     bool     `json:"result"`
	Data       any      `json:"data"`
	Errors     []string `json:"errors"`
	ErrorCount int      `json:"errorCount"`
	Records    int      `json:"records"`
}

// writeEnvelope answers in Paycom's envelope; result is true when there are no errors.
func writeEnvelope(w http.ResponseWriter, status int, data any, errs []string, records int) {
	if errs == nil {
		errs = []string{}
	}
	if data == nil {
		data = []any{}
	}
	writeJSON(w, status, envelope{Result: len(errs) == 0, Data: data, Errors: errs, ErrorCount: len(errs), Records: records})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
