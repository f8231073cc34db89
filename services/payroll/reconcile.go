package payroll

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"time"

	"github.com/fieldstream/fieldstream/pkg/failure"
	"github.com/fieldstream/fieldstream/pkg/servicetrade"
	"github.com/fieldstream/fieldstream/services/payroll/paycom"
)

// Discrepancy kinds.
const (
	MissingInPayroll    = "missing_in_payroll"    // ServiceTrade recorded it; payroll lacks it
	UnexpectedInPayroll = "unexpected_in_payroll" // payroll holds it; ServiceTrade has no such closed clock event
	UnmappedUser        = "unmapped_user"         // a closed clock event whose user has no employee code
)

// Discrepancy is one punch on which the source and payroll disagree.
type Discrepancy struct {
	Kind         string `json:"kind"`
	EECode       string `json:"eecode,omitempty"`
	UserID       int64  `json:"userId,omitempty"`
	ClockEventID int64  `json:"clockEventId,omitempty"`
	PunchType    string `json:"punchType,omitempty"`
	PunchTime    int64  `json:"punchTime"`
	PunchID      int64  `json:"punchId,omitempty"`
}

// Report is the outcome of a reconciliation.
type Report struct {
	From, To      time.Time     `json:"-"`
	Expected      int           `json:"expected"` // punches the source implies
	Found         int           `json:"found"`    // punches payroll holds in the window
	Discrepancies []Discrepancy `json:"discrepancies"`
}

// ClockEventLister walks ServiceTrade's clock events; *servicetrade.Client implements it.
type ClockEventLister interface {
	ListClockEvents(ctx context.Context, opts servicetrade.ListOptions, fn func(servicetrade.ClockEvent) error) error
}

// PunchLister lists an employee's punches; *paycom.Client implements it.
type PunchLister interface {
	ListPunches(ctx context.Context, eecode string, from, to time.Time) ([]paycom.Punch, error)
}

// EmployeeCodes lists every employee code payroll should be checked for.
type EmployeeCodes interface {
	Employees
	Codes(ctx context.Context) ([]string, error)
}

// punchKey identifies a punch as payroll tells punches apart.
type punchKey struct {
	eecode, kind string
	at           int64
}

// MaxShift is the longest clock event Reconcile expects: a clock-out in the window may
// belong to a clock-in this long before it.
const MaxShift = 24 * time.Hour

// Reconcile compares the punches in [from, to) implied by ServiceTrade's closed clock
// events with the punches payroll holds in that window for every mapped employee, and
// reports every difference, sorted by time.
func Reconcile(ctx context.Context, src ClockEventLister, pay PunchLister, emps EmployeeCodes, from, to time.Time) (Report, error) {
	r := Report{From: from, To: to}
	in := func(t int64) bool { return t >= from.Unix() && t < to.Unix() }
	expected := map[punchKey]int64{} // → clock event id
	codes := map[string]bool{}
	err := src.ListClockEvents(ctx, servicetrade.ListOptions{StartTime: from.Add(-MaxShift), EndTime: to}, func(ce servicetrade.ClockEvent) error {
		if ce.ClockOut == 0 {
			return nil
		}
		code, ok, err := emps.EECode(ctx, ce.UserID)
		if err != nil {
			return err
		}
		if !ok {
			if in(ce.ClockIn) || in(ce.ClockOut) {
				r.Discrepancies = append(r.Discrepancies, Discrepancy{Kind: UnmappedUser, UserID: ce.UserID, ClockEventID: ce.ID, PunchTime: ce.ClockIn})
			}
			return nil
		}
		codes[code] = true
		if in(ce.ClockIn) {
			expected[punchKey{code, paycom.PunchIn, ce.ClockIn}] = ce.ID
		}
		if in(ce.ClockOut) {
			expected[punchKey{code, paycom.PunchOut, ce.ClockOut}] = ce.ID
		}
		return nil
	})
	if err != nil {
		return r, fmt.Errorf("list clock events: %w", err)
	}
	r.Expected = len(expected)
	mapped, err := emps.Codes(ctx)
	if err != nil {
		return r, fmt.Errorf("employee codes: %w", err)
	}
	for _, c := range mapped {
		codes[c] = true
	}
	found := map[punchKey]bool{}
	for code := range codes {
		punches, err := pay.ListPunches(ctx, code, from, to)
		if failure.StatusOf(err) == http.StatusNotFound {
			punches, err = nil, nil // payroll does not know the employee: all is missing
		}
		if err != nil {
			return r, fmt.Errorf("list punches of %s: %w", code, err)
		}
		for _, p := range punches {
			if !in(p.PunchTime) {
				continue
			}
			k := keyOf(p)
			found[k] = true
			r.Found++
			if _, ok := expected[k]; !ok {
				r.Discrepancies = append(r.Discrepancies, Discrepancy{Kind: UnexpectedInPayroll, EECode: k.eecode, PunchType: k.kind, PunchTime: k.at, PunchID: p.PunchID})
			}
		}
	}
	for k, id := range expected {
		if !found[k] {
			r.Discrepancies = append(r.Discrepancies, Discrepancy{Kind: MissingInPayroll, EECode: k.eecode, ClockEventID: id, PunchType: k.kind, PunchTime: k.at})
		}
	}
	sort.Slice(r.Discrepancies, func(i, j int) bool {
		a, b := r.Discrepancies[i], r.Discrepancies[j]
		if a.PunchTime != b.PunchTime {
			return a.PunchTime < b.PunchTime
		}
		return a.Kind+a.EECode+a.PunchType < b.Kind+b.EECode+b.PunchType
	})
	return r, nil
}
