package event_test

import (
	"errors"
	"testing"

	"github.com/fieldstream/fieldstream/pkg/event"
)

func TestNormalizeEntity(t *testing.T) {
	tests := []struct{ in, want string }{
		{"job", "work_order"},
		{"Job", "work_order"},
		{"clock", "time_entry"},
		{"clockEvent", "time_entry"},
		{"clock event", "time_entry"},
		{"clock_event", "time_entry"},
		{"location", "location"},
		{"asset", "asset"},
		{"company", "company"},
		{"Service Request", "service_request"},
		{"a.b>*", "a_b"},
		{"...", ""},
	}
	for _, tt := range tests {
		if got := event.NormalizeEntity(tt.in); got != tt.want {
			t.Errorf("NormalizeEntity(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestNormalizeAction(t *testing.T) {
	tests := []struct{ action, status, want string }{
		{"updated", "completed", "completed"},
		{"updated", "scheduled", "scheduled"},
		{"updated", "closed", "closed"},
		{"updated", "canceled", "canceled"},
		{"updated", "pending_invoice", "updated"},
		{"updated", "", "updated"},
		{"created", "completed", "created"},
		{"Deleted", "", "deleted"},
	}
	for _, tt := range tests {
		if got := event.NormalizeAction(tt.action, tt.status); got != tt.want {
			t.Errorf("NormalizeAction(%q, %q) = %q, want %q", tt.action, tt.status, got, tt.want)
		}
	}
}

func TestSubject(t *testing.T) {
	tests := []struct {
		name                       string
		tenant, entity, id, action string
		want                       string
		wantErr                    error
	}{
		{name: "ok", tenant: "demo", entity: "work_order", id: "9223372036854775807", action: "completed", want: "events.demo.work_order.9223372036854775807.completed"},
		{name: "dot in id", tenant: "demo", entity: "asset", id: "1.2", action: "updated", wantErr: event.ErrInvalidSubjectToken},
		{name: "wildcard tenant", tenant: "*", entity: "asset", id: "1", action: "updated", wantErr: event.ErrInvalidSubjectToken},
		{name: "empty action", tenant: "demo", entity: "asset", id: "1", action: "", wantErr: event.ErrInvalidSubjectToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := event.Subject(tt.tenant, tt.entity, tt.id, tt.action)
			if !errors.Is(err, tt.wantErr) || got != tt.want {
				t.Fatalf("got %q, %v; want %q, %v", got, err, tt.want, tt.wantErr)
			}
			if err == nil {
				tn, en, id, ac, ok := event.SubjectParts(got)
				if !ok || tn != tt.tenant || en != tt.entity || id != tt.id || ac != tt.action {
					t.Fatalf("SubjectParts(%q) = %s %s %s %s %v", got, tn, en, id, ac, ok)
				}
			}
		})
	}
}
