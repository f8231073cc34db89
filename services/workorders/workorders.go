// Package workorders keeps a downstream work-order system in step with ServiceTrade jobs.
// Webhook events are thin, so each one is enriched by fetching the job from the ServiceTrade
// API; the current job is then upserted downstream, and a deleted job is deleted there.
package workorders

import (
	"context"
	"net/http"
	"strconv"

	"github.com/fieldstream/fieldstream/pkg/consumer"
	"github.com/fieldstream/fieldstream/pkg/consumerd"
	"github.com/fieldstream/fieldstream/pkg/event"
	"github.com/fieldstream/fieldstream/pkg/failure"
	"github.com/fieldstream/fieldstream/pkg/servicetrade"
	"github.com/fieldstream/fieldstream/services/workorders/wosystem"
)

// Name is the durable consumer's name.
const Name = "workorders"

// Description is the durable consumer's description.
const Description = "fieldstream workorders: work-order events, enriched from ServiceTrade, to the work-order system"

// Subjects are the events this service applies.
var Subjects = []string{event.SubjectPrefix + ".*." + event.EntityWorkOrder + ".>"}

// Jobs fetches a job from ServiceTrade; *servicetrade.Client implements it.
type Jobs interface {
	Job(ctx context.Context, id int64) (servicetrade.Job, error)
}

// System is the downstream work-order system; *wosystem.Client implements it.
type System interface {
	Upsert(ctx context.Context, wo wosystem.WorkOrder) error
	Delete(ctx context.Context, id int64, eventID string) error
}

// Applier applies work-order events.
type Applier struct {
	Jobs   Jobs
	System System
}

// Apply upserts the job an event names, or deletes it. Errors keep their class: a job
// ServiceTrade does not know (404) or the system refuses is permanent and goes to the
// dead-letter stream; outages and rate limits are transient. Deleting a work order the
// system does not have (404, 410) succeeds: the state the event asks for holds.
func (a *Applier) Apply(ctx context.Context, m *consumer.Message) error {
	id, err := strconv.ParseInt(m.Event.EntityID, 10, 64)
	if err != nil {
		return failure.Permanent(err)
	}
	if m.Event.Action == "deleted" {
		err := a.System.Delete(ctx, id, m.Event.ID)
		if st := failure.StatusOf(err); st == http.StatusNotFound || st == http.StatusGone {
			return nil // the system does not have it: the deletion holds
		}
		return err
	}
	job, err := a.Jobs.Job(ctx, id)
	if err != nil {
		return err
	}
	return a.System.Upsert(ctx, wosystem.WorkOrder{
		ID:         job.ID,
		EventID:    m.Event.ID,
		Number:     job.Number,
		Status:     job.Status,
		Type:       job.Type,
		LocationID: job.LocationID,
		CustomerID: job.CustomerID,
		DueBy:      job.DueBy,
		Updated:    job.Updated,
	})
}

// Service is the work-orders consumer service writing to the system at cfg.
func Service(cfg wosystem.Config) consumerd.Service {
	return consumerd.Service{Name: Name, Subjects: Subjects, Description: Description, Build: func(_ context.Context, d consumerd.Deps) (consumer.BatchHandler, error) {
		sys, err := wosystem.New(cfg)
		if err != nil {
			return nil, err
		}
		return consumer.PerMessage((&Applier{Jobs: d.ServiceTrade, System: sys}).Apply), nil
	}}
}
