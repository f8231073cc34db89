// Package payroll turns ServiceTrade clock events into punches in a Paycom-style payroll
// system. A clock event becomes a clock-in ("ID") and clock-out ("OD") punch once it is
// closed. Punches are imported in batches; the import rejects a whole batch when one punch
// is bad without saying which, so a rejected batch is split in halves until the bad punches
// are isolated: those are dead-lettered and the rest imported.
//
// A closed clock event's punches can come from several of its events (its creation read
// after it closed, its closing, a redelivery after a crash between import and
// acknowledgement, a replay), and payroll is not known to refuse an identical punch. So
// before importing, the applier reads the punches payroll already holds for the batch's
// employees and times, and imports only those it lacks, each once.
package payroll

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/fieldstream/fieldstream/pkg/consumer"
	"github.com/fieldstream/fieldstream/pkg/consumerd"
	"github.com/fieldstream/fieldstream/pkg/event"
	"github.com/fieldstream/fieldstream/pkg/failure"
	"github.com/fieldstream/fieldstream/pkg/servicetrade"
	"github.com/fieldstream/fieldstream/services/payroll/paycom"
)

// Name is the durable consumer's name.
const Name = "payroll"

// Description is the durable consumer's description.
const Description = "fieldstream payroll: closed clock events to payroll as clock-in/clock-out punches"

// Subjects are the events this service applies.
var Subjects = []string{event.SubjectPrefix + ".*." + event.EntityTimeEntry + ".>"}

// ClockEvents fetches clock events from ServiceTrade; *servicetrade.Client implements it.
type ClockEvents interface {
	ClockEvent(ctx context.Context, id int64) (servicetrade.ClockEvent, error)
}

// Payroll imports and lists punches; *paycom.Client implements it.
type Payroll interface {
	ImportPunches(ctx context.Context, punches []paycom.Punch) ([]int64, error)
	ListPunches(ctx context.Context, eecode string, from, to time.Time) ([]paycom.Punch, error)
}

// Employees maps a ServiceTrade user to a payroll employee code; ok is false for a user
// payroll does not know.
type Employees interface {
	EECode(ctx context.Context, userID int64) (code string, ok bool, err error)
}

// Applier applies time-entry events.
type Applier struct {
	Clock     ClockEvents
	Payroll   Payroll
	Employees Employees
	// Timezone of the punches (default "UTC").
	Timezone string
	// Fetches bounds concurrent ServiceTrade requests per batch (default 8).
	Fetches int

	// importing makes reading what payroll holds and importing what it lacks one step
	// within the process: two clock events can make the same punch, and the batches one
	// process handles at once (its live consumer's, its replays') would otherwise both
	// find it missing and both import it.
	importing sync.Mutex
}

// ErrNoEmployee: the clock event's user has no payroll employee code.
var ErrNoEmployee = errors.New("no payroll employee code for ServiceTrade user")

// Punches are the punches of a closed clock event, clock-in first; none while it is open.
func (a *Applier) Punches(ce servicetrade.ClockEvent, eecode string) []paycom.Punch {
	if ce.ClockIn == 0 || ce.ClockOut == 0 {
		return nil
	}
	tz := a.Timezone
	if tz == "" {
		tz = "UTC"
	}
	return []paycom.Punch{
		{EECode: eecode, EntryType: 1, PunchTime: ce.ClockIn, PunchType: "ID", Timezone: tz},
		{EECode: eecode, EntryType: 1, PunchTime: ce.ClockOut, PunchType: "OD", Timezone: tz},
	}
}

// ApplyBatch is a consumer.BatchHandler.
func (a *Applier) ApplyBatch(ctx context.Context, batch []*consumer.Message) []error {
	errs := make([]error, len(batch))
	punches := make([][]paycom.Punch, len(batch))
	a.prepare(ctx, batch, errs, punches)
	a.importing.Lock()
	defer a.importing.Unlock()
	held := a.heldPunches(ctx, punches, errs)
	var todo []int
	for i := range batch {
		if errs[i] == nil && len(punches[i]) > 0 {
			todo = append(todo, i)
		}
	}
	a.importSplitting(ctx, todo, punches, errs, held)
	return errs
}

// prepare fetches each clock event and builds its punches.
func (a *Applier) prepare(ctx context.Context, batch []*consumer.Message, errs []error, punches [][]paycom.Punch) {
	var g errgroup.Group
	g.SetLimit(a.fetches())
	for i, m := range batch {
		if m.Event.Action == "deleted" {
			continue // payroll keeps imported punches; reconciliation reports the difference
		}
		id, err := strconv.ParseInt(m.Event.EntityID, 10, 64)
		if err != nil {
			errs[i] = failure.Permanent(err)
			continue
		}
		g.Go(func() error {
			ce, err := a.Clock.ClockEvent(ctx, id)
			if err != nil {
				errs[i] = err
				return nil
			}
			if ce.ClockOut == 0 {
				return nil // still open: the clock-out event will carry both punches
			}
			code, ok, err := a.Employees.EECode(ctx, ce.UserID)
			switch {
			case err != nil:
				errs[i] = failure.Transient(err, 0)
			case !ok:
				errs[i] = failure.Permanent(fmt.Errorf("%w %d", ErrNoEmployee, ce.UserID))
			default:
				punches[i] = a.Punches(ce, code)
			}
			return nil
		})
	}
	_ = g.Wait() // each goroutine records its error in its message's slot
}

// heldPunches returns the punches payroll already holds among those of the batch,
// reading each employee's punches over the batch's times once. A message whose employee's
// punches cannot be read fails with that error; an employee payroll does not know (404)
// holds none.
func (a *Applier) heldPunches(ctx context.Context, punches [][]paycom.Punch, errs []error) map[punchKey]bool {
	type span struct{ from, to int64 }
	spans := map[string]span{}
	for i, ps := range punches {
		if errs[i] != nil {
			continue
		}
		for _, p := range ps {
			sp, ok := spans[p.EECode]
			if !ok || p.PunchTime < sp.from {
				sp.from = p.PunchTime
			}
			if !ok || p.PunchTime > sp.to {
				sp.to = p.PunchTime
			}
			spans[p.EECode] = sp
		}
	}
	held := map[punchKey]bool{}
	failed := map[string]error{}
	var mu sync.Mutex
	var g errgroup.Group
	g.SetLimit(a.fetches())
	for code, sp := range spans {
		g.Go(func() error {
			have, err := a.Payroll.ListPunches(ctx, code, time.Unix(sp.from, 0), time.Unix(sp.to, 0))
			if failure.StatusOf(err) == http.StatusNotFound {
				// An employee payroll does not know holds no punches; the import says
				// what is wrong with them (and splits the batch to isolate them).
				have, err = nil, nil
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed[code] = fmt.Errorf("read the punches payroll holds for %s: %w", code, err)
				return nil
			}
			for _, p := range have {
				held[keyOf(p)] = true
			}
			return nil
		})
	}
	_ = g.Wait() // each goroutine records its failure in failed
	for i, ps := range punches {
		if errs[i] == nil && len(ps) > 0 && failed[ps[0].EECode] != nil {
			errs[i] = failed[ps[0].EECode]
		}
	}
	return held
}

// fetches is how many requests of a batch run at once.
func (a *Applier) fetches() int {
	if a.Fetches <= 0 {
		return 8
	}
	return a.Fetches
}

func keyOf(p paycom.Punch) punchKey { return punchKey{p.EECode, p.PunchType, p.PunchTime} }

// importSplitting imports the punches of messages idx that payroll does not hold yet in
// one call, each once, and adds them to held once imported; if payroll rejects the batch,
// it imports each half on its own, down to single messages, whose rejection is then
// theirs alone. A batch of n messages with b bad ones costs about 2·b·log2(n) calls. A
// message whose punches payroll already holds all is applied.
func (a *Applier) importSplitting(ctx context.Context, idx []int, punches [][]paycom.Punch, errs []error, held map[punchKey]bool) {
	if len(idx) == 0 {
		return
	}
	var all []paycom.Punch
	inCall := map[punchKey]bool{}
	for _, i := range idx {
		for _, p := range punches[i] {
			if k := keyOf(p); !held[k] && !inCall[k] {
				inCall[k] = true
				all = append(all, p)
			}
		}
	}
	if len(all) == 0 {
		return
	}
	_, err := a.Payroll.ImportPunches(ctx, all)
	var rejected *paycom.BatchRejectedError
	switch {
	case err == nil:
		for k := range inCall {
			held[k] = true
		}
		return
	case !errors.As(err, &rejected):
		for _, i := range idx {
			errs[i] = err
		}
		return
	case len(idx) == 1:
		errs[idx[0]] = failure.Permanent(fmt.Errorf("payroll rejected the punches: %w", err))
		return
	}
	mid := len(idx) / 2
	a.importSplitting(ctx, idx[:mid], punches, errs, held)
	a.importSplitting(ctx, idx[mid:], punches, errs, held)
}

// Service is the payroll consumer service importing into the payroll system at cfg, with
// punches in timezone.
func Service(cfg paycom.Config, timezone string) consumerd.Service {
	return consumerd.Service{Name: Name, Subjects: Subjects, Description: Description, Build: func(ctx context.Context, d consumerd.Deps) (consumer.BatchHandler, error) {
		pc, err := paycom.New(cfg)
		if err != nil {
			return nil, err
		}
		emps, err := OpenEmployees(ctx, d.JetStream)
		if err != nil {
			return nil, err
		}
		return (&Applier{Clock: d.ServiceTrade, Payroll: pc, Employees: emps, Timezone: timezone}).ApplyBatch, nil
	}}
}
