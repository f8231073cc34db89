package servicetrade_test

import (
	"cmp"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/fieldstream/fieldstream/services/simulator/servicetrade"
)

var t0 = time.Date(2025, 12, 30, 14, 0, 0, 0, time.UTC)

func newAccount(tb testing.TB, cfg servicetrade.AccountConfig) *servicetrade.Account {
	tb.Helper()
	if cfg.Start.IsZero() {
		cfg.Start = t0
	}
	a, err := servicetrade.NewAccount(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return a
}

func TestAccountConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     servicetrade.AccountConfig
		wantErr bool
	}{
		{name: "zero value", cfg: servicetrade.AccountConfig{}},
		{name: "all set", cfg: servicetrade.AccountConfig{Seed: -7, IDBase: 1 << 60, Companies: 1, LocationsPerCompany: 1, AssetsPerLocation: 1, Technicians: 1, OfficeUsers: 1}},
		{name: "negative id base", cfg: servicetrade.AccountConfig{IDBase: -1}, wantErr: true},
		{name: "negative companies", cfg: servicetrade.AccountConfig{Companies: -1}, wantErr: true},
		{name: "negative technicians", cfg: servicetrade.AccountConfig{Technicians: -2}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if (err != nil) != tt.wantErr {
				t.Fatalf("Validate() = %v, wantErr %v", err, tt.wantErr)
			}
			if _, err := servicetrade.NewAccount(tt.cfg); (err != nil) != tt.wantErr {
				t.Fatalf("NewAccount() error = %v, wantErr %v", err, tt.wantErr)
			}
		})
	}
}

func TestAccountInitialEntities(t *testing.T) {
	a := newAccount(t, servicetrade.AccountConfig{Seed: 1, Companies: 3, LocationsPerCompany: 2, AssetsPerLocation: 5, Technicians: 3, OfficeUsers: 2})
	// The warm-up may have added a company or location or two.
	if got := len(a.Companies()); got < 3 || got > 6 {
		t.Errorf("companies = %d, want 3 and a few", got)
	}
	if got := len(a.Locations()); got < 6 || got > 12 {
		t.Errorf("locations = %d, want 6 and a few", got)
	}
	if got := len(a.Assets()); got < 20 { // 30 made; warm-up may delete a few
		t.Errorf("assets = %d, want about 30", got)
	}
	if len(a.Jobs()) == 0 || len(a.Appointments()) == 0 {
		t.Errorf("no jobs or appointments after warm-up")
	}
	techs := 0
	for _, u := range a.Users() {
		if u.Technician {
			techs++
		}
	}
	if techs != 3 || len(a.Users()) != 5 {
		t.Errorf("users = %d with %d technicians, want 5 with 3", len(a.Users()), techs)
	}
	for _, as := range a.Assets() {
		if as.ID < servicetrade.DefaultIDBase || as.Properties.Serial == "" || as.Properties.Manufacturer == "" {
			t.Errorf("asset %+v", as)
		}
		if _, ok := a.Location(as.LocationID); !ok {
			t.Errorf("asset %d at unknown location %d", as.ID, as.LocationID)
		}
	}
	if got := a.NextChanges(0, t0); got != nil {
		t.Errorf("NextChanges(0) = %v, want nil", got)
	}
}

func TestAccountDeterministic(t *testing.T) {
	run := func(seed int64) ([]servicetrade.Change, []servicetrade.Job) {
		a := newAccount(t, servicetrade.AccountConfig{Seed: seed})
		var all []servicetrade.Change
		now := t0
		for _, n := range []int{1, 5, 3, 50, 2, 200} {
			now = now.Add(time.Minute)
			got := a.NextChanges(n, now)
			if len(got) != n {
				t.Fatalf("NextChanges(%d) returned %d changes", n, len(got))
			}
			all = append(all, got...)
		}
		return all, a.Jobs()
	}
	c1, j1 := run(42)
	c2, j2 := run(42)
	if !reflect.DeepEqual(c1, c2) || !reflect.DeepEqual(j1, j2) {
		t.Error("two accounts with the same seed diverged")
	}
	c3, _ := run(43)
	if reflect.DeepEqual(c1, c3) {
		t.Error("accounts with different seeds made the same changes")
	}
}

// allowed lists the status transitions each entity type may report; "" keys the statuses
// an entity may be created in.
var allowed = map[string]map[string][]string{
	servicetrade.TypeJob: {
		"":                {"new", "bidding"},
		"new":             {"scheduled", "canceled"},
		"bidding":         {"new", "canceled"},
		"scheduled":       {"completed", "canceled", "new"},
		"completed":       {"closed", "pending_invoice"},
		"pending_invoice": {"sending_invoice"},
		"sending_invoice": {"closed"},
		"canceled":        {},
		"closed":          {},
	},
	servicetrade.TypeAppointment: {
		"":          {"scheduled"},
		"scheduled": {"completed", "no_show", "canceled_by_customer", "canceled_by_vendor"},
	},
	servicetrade.TypeDeficiency: {
		"":         {"new"},
		"new":      {"verified", "invalid"},
		"verified": {"fixed"},
	},
	servicetrade.TypeAsset: {
		"":         {"active"},
		"active":   {"inactive"},
		"inactive": {"active"},
	},
}

func allows(typ, from, to string) bool {
	for _, s := range allowed[typ][from] {
		if s == to {
			return true
		}
	}
	return false
}

type entityKey struct {
	typ string
	id  int64
}

// statusOf returns the current status of an entity in the model, and whether it exists.
func statusOf(a *servicetrade.Account, k entityKey) (string, bool) {
	switch k.typ {
	case servicetrade.TypeJob:
		e, ok := a.Job(k.id)
		return e.Status, ok
	case servicetrade.TypeAppointment:
		e, ok := a.Appointment(k.id)
		return e.Status, ok
	case servicetrade.TypeDeficiency:
		e, ok := a.Deficiency(k.id)
		return e.Status, ok
	case servicetrade.TypeAsset:
		e, ok := a.Asset(k.id)
		return e.Status, ok
	case servicetrade.TypeCompany:
		_, ok := a.Company(k.id)
		return "", ok
	case servicetrade.TypeLocation:
		_, ok := a.Location(k.id)
		return "", ok
	case servicetrade.TypeClock:
		_, ok := a.ClockEvent(k.id)
		return "", ok
	}
	return "", false
}

// TestAccountLifecycles replays a long run of changes against the life-cycle rules and
// then checks that the model ended where the changes say it should.
func TestAccountLifecycles(t *testing.T) {
	a := newAccount(t, servicetrade.AccountConfig{Seed: 7})

	alive := map[entityKey]bool{}
	status := map[entityKey]string{} // "" = created during the run, status not yet reported
	for _, e := range a.Companies() {
		alive[entityKey{servicetrade.TypeCompany, e.ID}] = true
	}
	for _, e := range a.Locations() {
		alive[entityKey{servicetrade.TypeLocation, e.ID}] = true
	}
	for _, e := range a.Assets() {
		k := entityKey{servicetrade.TypeAsset, e.ID}
		alive[k], status[k] = true, e.Status
	}
	for _, e := range a.Jobs() {
		k := entityKey{servicetrade.TypeJob, e.ID}
		alive[k], status[k] = true, e.Status
	}
	for _, e := range a.Appointments() {
		k := entityKey{servicetrade.TypeAppointment, e.ID}
		alive[k], status[k] = true, e.Status
	}
	for _, e := range a.ClockEvents() {
		alive[entityKey{servicetrade.TypeClock, e.ID}] = true
	}
	for _, e := range a.Deficiencies() {
		k := entityKey{servicetrade.TypeDeficiency, e.ID}
		alive[k], status[k] = true, e.Status
	}
	users := map[int64]bool{}
	for _, u := range a.Users() {
		users[u.ID] = true
	}

	seenStatus := map[string]bool{}
	seenType := map[string]bool{}
	now := t0
	var last int64
	apply := func(c servicetrade.Change) {
		t.Helper()
		k := entityKey{c.Entity.Type, c.Entity.ID}
		seenType[c.Entity.Type] = true
		if want := "https://api.servicetrade.com/api/" + c.Entity.Type + "/" + strconv.FormatInt(c.Entity.ID, 10); c.Entity.URI != want {
			t.Fatalf("uri %q, want %q", c.Entity.URI, want)
		}
		if !users[c.UserID] {
			t.Fatalf("%+v: unknown user", c)
		}
		if c.Timestamp < last || c.Timestamp > now.Unix() {
			t.Fatalf("%+v: timestamp %d outside [%d, %d]", c, c.Timestamp, last, now.Unix())
		}
		last = c.Timestamp
		switch c.Action {
		case servicetrade.ActionCreated:
			if alive[k] || len(c.Changeset) != 0 || c.Entity.ID < servicetrade.DefaultIDBase {
				t.Fatalf("%+v: bad create (alive %v)", c, alive[k])
			}
			alive[k], status[k] = true, ""
		case servicetrade.ActionDeleted:
			if !alive[k] || len(c.Changeset) != 0 {
				t.Fatalf("%+v: bad delete (alive %v)", c, alive[k])
			}
			delete(alive, k)
			delete(status, k)
		case servicetrade.ActionUpdated:
			if !alive[k] || len(c.Changeset) == 0 {
				t.Fatalf("%+v: bad update (alive %v)", c, alive[k])
			}
			for _, fc := range c.Changeset {
				if fc.Field != "status" {
					continue
				}
				from, to := fc.OldValue.(string), fc.NewValue.(string)
				known := status[k]
				if known == "" && !allows(k.typ, "", from) || known != "" && known != from {
					t.Fatalf("%+v: status was %q (\"\" = new), change says %q", c, known, from)
				}
				if !allows(k.typ, from, to) {
					t.Fatalf("%+v: %s %q → %q not allowed", c, k.typ, from, to)
				}
				status[k] = to
				seenStatus[k.typ+":"+to] = true
			}
		default:
			t.Fatalf("%+v: unknown action", c)
		}
	}
	// disagreements lists where the model and the changes reported so far differ.
	disagreements := func() []string {
		var out []string
		for k := range alive {
			got, ok := statusOf(a, k)
			if !ok {
				out = append(out, fmt.Sprintf("%v: changes say it exists, the account has no such entity", k))
			} else if want := status[k]; want != "" && got != want {
				out = append(out, fmt.Sprintf("%v: status %q, changes say %q", k, got, want))
			}
		}
		for _, j := range a.Jobs() {
			if !alive[entityKey{servicetrade.TypeJob, j.ID}] {
				out = append(out, fmt.Sprintf("job %d exists, but was deleted or never reported", j.ID))
			}
		}
		return out
	}

	for range 2000 {
		now = now.Add(90 * time.Second)
		for _, c := range a.NextChanges(10, now) {
			apply(c)
		}
	}
	// The model runs up to one step ahead of the changes taken (a step's later changes
	// wait for the next call). Take changes one at a time until it has none waiting.
	for range 100 {
		if len(disagreements()) == 0 {
			break
		}
		apply(a.NextChanges(1, now)[0])
	}
	for _, d := range disagreements() {
		t.Error(d)
	}

	for _, typ := range []string{"job", "appointment", "clock", "deficiency", "asset", "location", "company"} {
		if !seenType[typ] {
			t.Errorf("no change to a %s in 20000 changes", typ)
		}
	}
	for _, s := range []string{"job:scheduled", "job:completed", "job:closed", "job:canceled", "job:pending_invoice",
		"job:sending_invoice", "appointment:completed", "deficiency:verified", "deficiency:fixed", "asset:inactive"} {
		if !seenStatus[s] {
			t.Errorf("never saw %s", s)
		}
	}

	for _, j := range a.Jobs() {
		loc, ok := a.Location(j.LocationID)
		if !ok || loc.CompanyID != j.CustomerID {
			t.Errorf("job %+v: location %+v", j, loc)
		}
	}
	for _, ap := range a.Appointments() {
		if _, ok := a.Job(ap.JobID); !ok {
			t.Errorf("appointment %d of missing job %d", ap.ID, ap.JobID)
		}
		if ap.WindowEnd <= ap.WindowStart || len(ap.TechIDs) == 0 {
			t.Errorf("appointment %+v", ap)
		}
	}
	for _, c := range a.ClockEvents() {
		if c.ClockOut != 0 && c.ElapsedTime != c.ClockOut-c.ClockIn {
			t.Errorf("clock event %+v: elapsed time", c)
		}
		if u, ok := a.User(c.UserID); !ok || !u.Technician {
			t.Errorf("clock event %d by %+v, want a technician", c.ID, u)
		}
	}
}

func TestAccountReturnsCopies(t *testing.T) {
	a := newAccount(t, servicetrade.AccountConfig{Seed: 3})
	aps := a.Appointments()
	if len(aps) == 0 {
		t.Fatal("no appointments")
	}
	want := aps[0].TechIDs[0]
	aps[0].TechIDs[0] = -1
	got, _ := a.Appointment(aps[0].ID)
	if got.TechIDs[0] != want {
		t.Errorf("changing a returned appointment changed the account")
	}
}

// TestAccountConcurrentUse is for the race detector: changes and reads at once.
func TestAccountConcurrentUse(t *testing.T) {
	a := newAccount(t, servicetrade.AccountConfig{Seed: 5})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 50 {
				for _, c := range a.NextChanges(5, t0) {
					if c.Entity.Type == servicetrade.TypeJob {
						a.Job(c.Entity.ID)
					}
				}
				a.Appointments()
			}
		})
	}
	wg.Wait()
}

// TestAccountOneClockPerTechnician: a technician is on one clock at a time, even when many
// changes share a second: one person's clock-ins and clock-outs alternate, as payroll
// expects of the punches it imports.
func TestAccountOneClockPerTechnician(t *testing.T) {
	a := newAccount(t, servicetrade.AccountConfig{Seed: 3})
	now := time.Unix(1_800_000_000, 0)
	for i := range 400 {
		a.NextChanges(25, now.Add(time.Duration(i/4)*time.Second)) // four calls per second
	}
	byTech := map[int64][]servicetrade.ClockEvent{}
	for _, c := range a.ClockEvents() {
		byTech[c.UserID] = append(byTech[c.UserID], c)
	}
	if len(a.ClockEvents()) < 100 {
		t.Fatalf("only %d clock events", len(a.ClockEvents()))
	}
	for tech, cs := range byTech {
		slices.SortFunc(cs, func(x, y servicetrade.ClockEvent) int { return cmp.Compare(x.ClockIn, y.ClockIn) })
		for i, c := range cs {
			if c.ClockOut != 0 && c.ClockOut < c.ClockIn {
				t.Errorf("technician %d: clock event %d from %d to %d", tech, c.ID, c.ClockIn, c.ClockOut)
			}
			if i > 0 && (cs[i-1].ClockOut == 0 || cs[i-1].ClockOut > c.ClockIn) {
				t.Errorf("technician %d: clock event %d (in %d) while %d (in %d, out %d) was open", tech, c.ID, c.ClockIn, cs[i-1].ID, cs[i-1].ClockIn, cs[i-1].ClockOut)
			}
		}
	}
}
