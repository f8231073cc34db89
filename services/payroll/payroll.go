// Package payroll turns ServiceTrade clock events into punches in a Paycom-style payroll
// system. A clock event becomes a clock-in ("ID") and clock-out ("OD") punch once it is
// closed. Punches are imported in batches; the import rejects a whole batch when one punch
// is bad without saying which, so a rejected batch is split in halves until the bad punches
// are isolated: those are dead-lettered and the rest imported.
package payroll

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"

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

// Payroll imports punches; *paycom.Client implements it.
type Payroll interface {
	ImportPunches(ctx context.Context, punches []paycom.Punch) ([]int64, error)
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
	var todo []int
	for i := range batch {
		if errs[i] == nil && len(punches[i]) > 0 {
			todo = append(todo, i)
		}
	}
	a.importSplitting(ctx, todo, punches, errs)
	return errs
}

// prepare fetches each clock event and builds its punches.
func (a *Applier) prepare(ctx context.Context, batch []*consumer.Message, errs []error, punches [][]paycom.Punch) {
	n := a.Fetches
	if n <= 0 {
		n = 8
	}
	sem := make(chan struct{}, n)
	var wg sync.WaitGroup
	for i, m := range batch {
		if m.Event.Action == "deleted" {
			continue // payroll keeps imported punches; reconciliation reports the difference
		}
		id, err := strconv.ParseInt(m.Event.EntityID, 10, 64)
		if err != nil {
			errs[i] = failure.Permanent(err)
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			ce, err := a.Clock.ClockEvent(ctx, id)
			if err != nil {
				errs[i] = err
				return
			}
			if ce.ClockOut == 0 {
				return // still open: the clock-out event will carry both punches
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
		}()
	}
	wg.Wait()
}

// importSplitting imports the punches of messages idx in one call; if payroll rejects the
// batch, it imports each half on its own, down to single messages, whose rejection is
// then theirs alone. A batch of n messages with b bad ones costs about 2·b·log2(n) calls.
func (a *Applier) importSplitting(ctx context.Context, idx []int, punches [][]paycom.Punch, errs []error) {
	if len(idx) == 0 {
		return
	}
	var all []paycom.Punch
	for _, i := range idx {
		all = append(all, punches[i]...)
	}
	_, err := a.Payroll.ImportPunches(ctx, all)
	var rejected *paycom.BatchRejectedError
	switch {
	case err == nil:
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
	a.importSplitting(ctx, idx[:mid], punches, errs)
	a.importSplitting(ctx, idx[mid:], punches, errs)
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
