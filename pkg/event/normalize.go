// Package event defines fieldstream's normalized event: its entity and action names, the
// JetStream subject it is stored under, and its CloudEvents 1.0 envelope.
package event

import (
	"strings"
)

// Normalized entity names (domain.md, "Normalized event catalogue").
const (
	EntityLocation    = "location"
	EntityAsset       = "asset"
	EntityWorkOrder   = "work_order"
	EntityAppointment = "appointment"
	EntityTimeEntry   = "time_entry"
	EntityDeficiency  = "deficiency"
	EntityContract    = "contract"
)

// sourceEntities maps the names senders use to fieldstream's. ServiceTrade calls a work
// order a "job" and a time entry a "clock event"; keys are compared after Token folding.
var sourceEntities = map[string]string{
	"job":         EntityWorkOrder,
	"jobs":        EntityWorkOrder,
	"work_order":  EntityWorkOrder,
	"workorder":   EntityWorkOrder,
	"clock":       EntityTimeEntry,
	"clock_event": EntityTimeEntry,
	"clockevent":  EntityTimeEntry,
	"time_entry":  EntityTimeEntry,
	"timeentry":   EntityTimeEntry,
	"location":    EntityLocation,
	"asset":       EntityAsset,
	"appointment": EntityAppointment,
	"deficiency":  EntityDeficiency,
	"contract":    EntityContract,
}

// NormalizeEntity returns fieldstream's name for a sender's entity type: "job" becomes
// "work_order", "clock event" becomes "time_entry". A type fieldstream has no name for
// (company, contact, user, …) is kept, folded by Token. It returns "" only for a type that
// folds to nothing.
func NormalizeEntity(sourceType string) string {
	t := Token(sourceType)
	if n, ok := sourceEntities[t]; ok {
		return n
	}
	return t
}

// statusActions are the status values that name an action of their own, so that
// "work order completed" is a subject of its own and not buried in "updated".
var statusActions = map[string]bool{"scheduled": true, "completed": true, "closed": true, "canceled": true}

// NormalizeAction returns fieldstream's action for a sender's action. An update whose
// changeset moves the status to scheduled, completed, closed or canceled becomes that action;
// every other action is folded by Token.
func NormalizeAction(sourceAction, newStatus string) string {
	a := Token(sourceAction)
	if a == "updated" && statusActions[Token(newStatus)] {
		return Token(newStatus)
	}
	return a
}

// Token folds s into one NATS subject token: lower case, with every run of characters other
// than letters, digits, '-' and '_' turned into one '_' (so '.', '*', '>' and white space can
// never split or widen a subject), and '_' trimmed at both ends. camelCase is split:
// "clockEvent" becomes "clock_event".
func Token(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 4)
	pendingSep := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'A' && c <= 'Z':
			if i > 0 && s[i-1] >= 'a' && s[i-1] <= 'z' {
				pendingSep = true
			}
			c += 'a' - 'A'
			fallthrough
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-':
			if pendingSep && b.Len() > 0 {
				b.WriteByte('_')
			}
			pendingSep = false
			b.WriteByte(c)
		default:
			pendingSep = true
		}
	}
	return b.String()
}
