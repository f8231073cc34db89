// Package servicetrade simulates a ServiceTrade account and the webhooks it sends.
//
// An Account is an in-memory model of one account — companies, locations, assets, jobs,
// appointments, clock events and deficiencies — whose entities move through plausible
// life-cycles (a job goes new → scheduled → completed → closed, its technicians clock in
// en route and on site, inspections turn up deficiencies). NextChanges advances the model
// and reports each change as a webhook item. A Sender batches those items into deliveries
// and POSTs them to a hook URL with ServiceTrade's delivery rules: a 5 s timeout, 3 attempts
// and then the delivery is discarded, any 200–499 reply counts as delivered, and now and
// then a duplicate or an out-of-order delivery.
package servicetrade

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"
)

// DefaultIDBase is the first id an account hands out; ServiceTrade's ids are int64s of
// this size. Later ids grow by idStride.
const DefaultIDBase int64 = 2274033731790001

const idStride = 16

// AccountConfig configures NewAccount. The zero value is a usable small account; every
// zero field takes the default in its comment.
type AccountConfig struct {
	// Seed makes the account deterministic: the same Seed, Start and sequence of
	// NextChanges calls (n and now) give the same entities and the same changes.
	Seed int64
	// Start is when the initial entities were created. Default: time.Now(), which makes
	// their timestamps (only) differ between runs.
	Start time.Time
	// IDBase is the first entity id. Default: DefaultIDBase. Set it above 2^53 to test
	// that consumers keep ids exact.
	IDBase int64
	// Companies is the number of customer companies created up front. Default: 4.
	Companies int
	// LocationsPerCompany is the number of locations each initial company has. Default: 2.
	LocationsPerCompany int
	// AssetsPerLocation is the number of assets at each initial location. Default: 4.
	AssetsPerLocation int
	// Technicians is the number of technicians, who run appointments. Default: 4.
	Technicians int
	// OfficeUsers is the number of office users, who create and schedule jobs. Default: 2.
	OfficeUsers int
}

// Validate reports a setting that NewAccount would reject.
func (c AccountConfig) Validate() error {
	var errs []error
	if c.IDBase < 0 {
		errs = append(errs, fmt.Errorf("IDBase %d: must not be negative", c.IDBase))
	}
	for _, f := range []struct {
		name string
		v    int
	}{
		{"Companies", c.Companies},
		{"LocationsPerCompany", c.LocationsPerCompany},
		{"AssetsPerLocation", c.AssetsPerLocation},
		{"Technicians", c.Technicians},
		{"OfficeUsers", c.OfficeUsers},
	} {
		if f.v < 0 {
			errs = append(errs, fmt.Errorf("%s %d: must not be negative", f.name, f.v))
		}
	}
	return errors.Join(errs...)
}

func (c AccountConfig) withDefaults() AccountConfig {
	if c.Start.IsZero() {
		c.Start = time.Now()
	}
	if c.IDBase == 0 {
		c.IDBase = DefaultIDBase
	}
	setDefault(&c.Companies, 4)
	setDefault(&c.LocationsPerCompany, 2)
	setDefault(&c.AssetsPerLocation, 4)
	setDefault(&c.Technicians, 4)
	setDefault(&c.OfficeUsers, 2)
	return c
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// Account is a simulated ServiceTrade account. It is safe for concurrent use: a REST
// simulator may read entities while a Sender takes changes.
//
// Deleted entities are gone: their lookups return false, as ServiceTrade's API answers 404.
// Everything else stays, closed jobs included, so the account grows with its changes:
// about 70 MB per million.
type Account struct {
	mu      sync.Mutex
	rng     *rand.Rand
	idBase  int64
	nextSeq int64 // ids handed out so far
	jobNum  int
	pending []Change // produced by a step but not yet taken by NextChanges

	users  map[int64]*User
	techs  []int64
	office []int64

	companies  map[int64]*Company
	companyIDs idSet

	locations   map[int64]*Location
	locationIDs idSet

	assets           map[int64]*Asset
	assetIDs         idSet
	inactiveAssetIDs idSet
	assetsAt         map[int64]*idSet // location id → asset ids

	jobs     map[int64]*Job
	jobsIn   map[string]*idSet // status → job ids; closed jobs are not indexed
	visitFor map[int64]int64   // scheduled job id → its appointment id

	appointments map[int64]*Appointment
	apptsOf      map[int64][]int64 // job id → appointment ids
	visits       map[int64]*visit  // appointment id → the visit under way or to come
	waiting      idSet             // scheduled appointments nobody has started
	enroute      idSet             // a technician is travelling
	onsite       idSet             // a technician is on site

	clocks map[int64]*ClockEvent
	// clockedIn marks the technicians with an open clock event: a person is on one clock
	// at a time, so payroll can tell every punch apart.
	clockedIn map[int64]bool

	deficiencies map[int64]*Deficiency
	defsIn       map[string]*idSet // status → deficiency ids; fixed ones are not indexed
}

// visit is the state of a scheduled appointment's field work.
type visit struct {
	tech  int64 // the technician who clocks
	clock int64 // the open clock event, 0 before travel starts
}

// NewAccount returns an account populated per cfg, already some way into its life (jobs in
// every status), and with no changes pending. It fails only if cfg.Validate does.
func NewAccount(cfg AccountConfig) (*Account, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("servicetrade: account config: %w", err)
	}
	cfg = cfg.withDefaults()
	a := &Account{
		rng:          rand.New(rand.NewPCG(uint64(cfg.Seed), 0x5e71ce7ade)),
		idBase:       cfg.IDBase,
		jobNum:       10000,
		users:        map[int64]*User{},
		companies:    map[int64]*Company{},
		locations:    map[int64]*Location{},
		assets:       map[int64]*Asset{},
		assetsAt:     map[int64]*idSet{},
		jobs:         map[int64]*Job{},
		jobsIn:       map[string]*idSet{},
		visitFor:     map[int64]int64{},
		appointments: map[int64]*Appointment{},
		apptsOf:      map[int64][]int64{},
		visits:       map[int64]*visit{},
		clocks:       map[int64]*ClockEvent{},
		clockedIn:    map[int64]bool{},
		deficiencies: map[int64]*Deficiency{},
		defsIn:       map[string]*idSet{},
	}
	a.populate(cfg)
	return a, nil
}

func (a *Account) populate(cfg AccountConfig) {
	now := cfg.Start.Unix()
	for i := range cfg.OfficeUsers + cfg.Technicians {
		tech := i >= cfg.OfficeUsers
		name := people[i%len(people)]
		if i >= len(people) {
			name = fmt.Sprintf("%s %d", name, i/len(people)+1)
		}
		u := &User{ID: a.newID(), Name: name, Technician: tech}
		u.Email = fmt.Sprintf("user%d@contractor.example", i+1)
		a.users[u.ID] = u
		if tech {
			a.techs = append(a.techs, u.ID)
		} else {
			a.office = append(a.office, u.ID)
		}
	}
	for range cfg.Companies {
		c := a.addCompany(now)
		for range cfg.LocationsPerCompany {
			l := a.addLocation(now, c.ID)
			for range cfg.AssetsPerLocation {
				a.addAsset(now, l.ID)
			}
		}
	}
	// Run the life-cycles for a while so that the account starts with jobs, visits and
	// deficiencies in every state, then forget those changes: they happened before the
	// simulation began.
	for range 8 * a.locationIDs.len() {
		a.step(now)
	}
	a.pending = nil
}

// NextChanges advances the account by n changes at time now and returns them in the order
// they happened, as webhook items stamped now. Related changes (a job scheduled and its
// appointment created) happen together and may be split across calls. It returns nil for
// n <= 0.
// PendingChanges returns, and forgets, the changes the account already made but has not
// reported yet: a step can make several changes at once, and NextChanges reports only as
// many as asked. A sender that stops calls it last so that nothing the API already shows
// goes unannounced.
func (a *Account) PendingChanges() []Change {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := slices.Clone(a.pending)
	a.pending = a.pending[:0]
	return out
}

func (a *Account) NextChanges(n int, now time.Time) []Change {
	if n <= 0 {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for len(a.pending) < n {
		a.step(now.Unix())
	}
	out := slices.Clone(a.pending[:n])
	a.pending = append(a.pending[:0], a.pending[n:]...)
	return out
}

func (a *Account) newID() int64 {
	id := a.idBase + a.nextSeq*idStride
	a.nextSeq++
	return id
}

// Lookups and lists. Lists are sorted by id.

// User returns the user with id.
func (a *Account) User(id int64) (User, bool) { return lookup(a, a.users, id, same) }

// Users returns every user.
func (a *Account) Users() []User { return list(a, a.users, same) }

// Company returns the company with id.
func (a *Account) Company(id int64) (Company, bool) { return lookup(a, a.companies, id, same) }

// Companies returns every company.
func (a *Account) Companies() []Company { return list(a, a.companies, same) }

// Location returns the location with id.
func (a *Account) Location(id int64) (Location, bool) { return lookup(a, a.locations, id, same) }

// Locations returns every location.
func (a *Account) Locations() []Location { return list(a, a.locations, same) }

// Asset returns the asset with id.
func (a *Account) Asset(id int64) (Asset, bool) { return lookup(a, a.assets, id, same) }

// Assets returns every asset.
func (a *Account) Assets() []Asset { return list(a, a.assets, same) }

// Job returns the job with id.
func (a *Account) Job(id int64) (Job, bool) { return lookup(a, a.jobs, id, same) }

// Jobs returns every job, closed ones included.
func (a *Account) Jobs() []Job { return list(a, a.jobs, same) }

// Appointment returns the appointment with id.
func (a *Account) Appointment(id int64) (Appointment, bool) {
	return lookup(a, a.appointments, id, Appointment.clone)
}

// Appointments returns every appointment.
func (a *Account) Appointments() []Appointment { return list(a, a.appointments, Appointment.clone) }

// ClockEvent returns the clock event with id.
func (a *Account) ClockEvent(id int64) (ClockEvent, bool) { return lookup(a, a.clocks, id, same) }

// ClockEvents returns every clock event.
func (a *Account) ClockEvents() []ClockEvent { return list(a, a.clocks, same) }

// Deficiency returns the deficiency with id.
func (a *Account) Deficiency(id int64) (Deficiency, bool) {
	return lookup(a, a.deficiencies, id, same)
}

// Deficiencies returns every deficiency.
func (a *Account) Deficiencies() []Deficiency { return list(a, a.deficiencies, same) }

func same[T any](v T) T { return v }

func lookup[T any](a *Account, m map[int64]*T, id int64, copyOf func(T) T) (T, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	p, ok := m[id]
	if !ok {
		var zero T
		return zero, false
	}
	return copyOf(*p), true
}

func list[T any](a *Account, m map[int64]*T, copyOf func(T) T) []T {
	a.mu.Lock()
	defer a.mu.Unlock()
	ids := make([]int64, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	out := make([]T, len(ids))
	for i, id := range ids {
		out[i] = copyOf(*m[id])
	}
	return out
}
