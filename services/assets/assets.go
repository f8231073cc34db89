// Package assets keeps a downstream asset registry in step with ServiceTrade's assets and
// locations. It applies events in batches: each asset is fetched from the ServiceTrade API
// (webhooks carry only a reference), the batch is grouped by service location, and each
// group is written in one call to the registry, whose answer is per item, so one bad asset
// does not fail its neighbours.
package assets

import (
	"context"
	"fmt"
	"net/http"
	"strconv"

	"golang.org/x/sync/errgroup"

	"github.com/fieldstream/fieldstream/pkg/consumer"
	"github.com/fieldstream/fieldstream/pkg/consumerd"
	"github.com/fieldstream/fieldstream/pkg/event"
	"github.com/fieldstream/fieldstream/pkg/failure"
	"github.com/fieldstream/fieldstream/pkg/servicetrade"
	"github.com/fieldstream/fieldstream/services/assets/assetsys"
)

// Name is the durable consumer's name.
const Name = "assets"

// Description is the durable consumer's description.
const Description = "fieldstream assets: asset and location events to the asset registry, grouped per service location"

// Subjects are the events this service applies.
var Subjects = []string{
	event.SubjectPrefix + ".*." + event.EntityAsset + ".>",
	event.SubjectPrefix + ".*." + event.EntityLocation + ".>",
}

// Source fetches assets and locations from ServiceTrade; *servicetrade.Client implements it.
type Source interface {
	Asset(ctx context.Context, id int64) (servicetrade.Asset, error)
	Location(ctx context.Context, id int64) (servicetrade.Location, error)
}

// Registry is the downstream asset registry; *assetsys.Client implements it.
type Registry interface {
	PutAssets(ctx context.Context, locationID int64, assets []assetsys.Asset) ([]assetsys.ItemResult, error)
	PutLocation(ctx context.Context, l assetsys.Location) error
	DeleteAsset(ctx context.Context, id int64, eventID string) error
}

// Applier applies asset and location events.
type Applier struct {
	Source   Source
	Registry Registry
	// Fetches bounds concurrent ServiceTrade requests per batch (default 8).
	Fetches int
}

// ApplyBatch is a consumer.BatchHandler. Events about the same asset in one batch collapse
// into one write of its current state; each shares that write's outcome.
func (a *Applier) ApplyBatch(ctx context.Context, batch []*consumer.Message) []error {
	errs := make([]error, len(batch))
	assets := make([]servicetrade.Asset, len(batch))
	a.fetchAll(ctx, batch, errs, assets)

	type write struct {
		item    assetsys.Asset
		indexes []int
	}
	groups := map[int64]map[int64]*write{} // location → asset → write
	for i, m := range batch {
		if errs[i] != nil || m.Event.Entity != event.EntityAsset || m.Event.Action == "deleted" {
			continue
		}
		as := assets[i]
		g := groups[as.LocationID]
		if g == nil {
			g = map[int64]*write{}
			groups[as.LocationID] = g
		}
		w := g[as.ID]
		if w == nil {
			w = &write{}
			g[as.ID] = w
		}
		w.item = toRegistry(as, m.Event.ID) // the last event of the batch names the write
		w.indexes = append(w.indexes, i)
	}
	for loc, g := range groups {
		items := make([]assetsys.Asset, 0, len(g))
		byID := map[int64]*write{}
		for id, w := range g {
			items = append(items, w.item)
			byID[id] = w
		}
		results, err := a.Registry.PutAssets(ctx, loc, items)
		if err != nil {
			for _, w := range g {
				for _, i := range w.indexes {
					errs[i] = err
				}
			}
			continue
		}
		seen := map[int64]bool{}
		for _, r := range results {
			if w := byID[r.ID]; w != nil {
				seen[r.ID] = true
				for _, i := range w.indexes {
					errs[i] = r.Err
				}
			}
		}
		for id, w := range byID {
			if !seen[id] {
				for _, i := range w.indexes {
					errs[i] = failure.Transient(fmt.Errorf("registry answered nothing for asset %d", id), 0)
				}
			}
		}
	}
	return errs
}

// fetchAll applies location and delete events directly and fetches every other asset, a
// few at a time.
func (a *Applier) fetchAll(ctx context.Context, batch []*consumer.Message, errs []error, assets []servicetrade.Asset) {
	var g errgroup.Group
	g.SetLimit(a.fetches())
	for i, m := range batch {
		id, err := strconv.ParseInt(m.Event.EntityID, 10, 64)
		if err != nil {
			errs[i] = failure.Permanent(err)
			continue
		}
		g.Go(func() error {
			switch {
			case m.Event.Entity == event.EntityLocation && m.Event.Action == "deleted":
				// The registry keeps locations; ServiceTrade no longer serves this one.
			case m.Event.Entity == event.EntityLocation:
				errs[i] = a.applyLocation(ctx, id, m.Event.ID)
			case m.Event.Entity != event.EntityAsset:
				errs[i] = failure.Permanent(fmt.Errorf("assets cannot apply a %s event", m.Event.Entity))
			case m.Event.Action == "deleted":
				errs[i] = a.Registry.DeleteAsset(ctx, id, m.Event.ID)
				if st := failure.StatusOf(errs[i]); st == http.StatusNotFound || st == http.StatusGone {
					errs[i] = nil // already gone from the registry: the deletion holds
				}
			default:
				assets[i], errs[i] = a.Source.Asset(ctx, id)
			}
			return nil
		})
	}
	_ = g.Wait() // each goroutine records its error in its message's slot
}

// fetches is how many requests of a batch run at once.
func (a *Applier) fetches() int {
	if a.Fetches <= 0 {
		return 8
	}
	return a.Fetches
}

func (a *Applier) applyLocation(ctx context.Context, id int64, eventID string) error {
	l, err := a.Source.Location(ctx, id)
	if err != nil {
		return err
	}
	return a.Registry.PutLocation(ctx, assetsys.Location{
		ID: l.ID, EventID: eventID, CompanyID: l.CompanyID, Name: l.Name, Updated: l.Updated,
	})
}

func toRegistry(as servicetrade.Asset, eventID string) assetsys.Asset {
	props := map[string]string{
		"serial":       as.Properties.Serial,
		"manufacturer": as.Properties.Manufacturer,
		"model":        as.Properties.Model,
	}
	if as.LastInspected != 0 {
		props["lastInspected"] = strconv.FormatInt(as.LastInspected, 10)
	}
	return assetsys.Asset{
		ID:         as.ID,
		EventID:    eventID,
		LocationID: as.LocationID,
		ParentID:   as.ParentID,
		Type:       as.Type,
		Status:     as.Status,
		Properties: props,
		Updated:    as.Updated,
	}
}

// Service is the assets consumer service writing to the registry at cfg.
func Service(cfg assetsys.Config) consumerd.Service {
	return consumerd.Service{Name: Name, Subjects: Subjects, Description: Description, Build: func(_ context.Context, d consumerd.Deps) (consumer.BatchHandler, error) {
		reg, err := assetsys.New(cfg)
		if err != nil {
			return nil, err
		}
		return (&Applier{Source: d.ServiceTrade, Registry: reg}).ApplyBatch, nil
	}}
}
