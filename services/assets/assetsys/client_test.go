package assetsys_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/fieldstream/fieldstream/pkg/failure"
	"github.com/fieldstream/fieldstream/services/assets/assetsys"
	assetsim "github.com/fieldstream/fieldstream/services/simulator/assetsys"
	"github.com/fieldstream/fieldstream/services/simulator/fault"
)

// Ids above 2^53, odd so that no float64 holds them.
const (
	locationID int64 = 1<<53 + 1
	otherLoc   int64 = 1<<53 + 3
	assetBase  int64 = 1<<53 + 101
)

func start(t testing.TB, cfg assetsim.Config) (*assetsim.Registry, *assetsys.Client) {
	t.Helper()
	sim, err := assetsim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	client, err := assetsys.New(assetsys.Config{BaseURL: srv.URL, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return sim, client
}

func asset(id int64, eventID string, updated int64) assetsys.Asset {
	return assetsys.Asset{
		ID: id, EventID: eventID, LocationID: locationID, Type: "backflow", Status: assetsys.StatusActive,
		Properties: map[string]string{"serial": "BF-1", "manufacturer": "Watts", "model": "909"},
		Updated:    updated,
	}
}

func TestPutAssetsItemOutcomes(t *testing.T) {
	sim, client := start(t, assetsim.Config{})
	ctx := t.Context()
	// The registry already holds asset 0 at updated 200.
	if _, err := client.PutAssets(ctx, locationID, []assetsys.Asset{asset(assetBase, "e0", 200)}); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name       string
		asset      func() assetsys.Asset
		wantStatus string
		wantErr    bool
	}{
		{name: "newer version", asset: func() assetsys.Asset { return asset(assetBase, "e1", 201) }, wantStatus: assetsys.ResultApplied},
		{name: "same event again", asset: func() assetsys.Asset { return asset(assetBase, "e0", 200) }, wantStatus: assetsys.ResultDuplicate},
		{name: "older version", asset: func() assetsys.Asset { return asset(assetBase, "e-old", 100) }, wantStatus: assetsys.ResultStale},
		{name: "new asset with a parent", asset: func() assetsys.Asset {
			a := asset(assetBase+2, "e2", 200)
			a.ParentID = assetBase
			return a
		}, wantStatus: assetsys.ResultApplied},
		{name: "missing type", asset: func() assetsys.Asset { a := asset(assetBase+4, "e3", 200); a.Type = ""; return a }, wantStatus: assetsys.ResultRejected, wantErr: true},
		{name: "unknown status", asset: func() assetsys.Asset { a := asset(assetBase+6, "e4", 200); a.Status = "retired"; return a }, wantStatus: assetsys.ResultRejected, wantErr: true},
		{name: "other location", asset: func() assetsys.Asset { a := asset(assetBase+8, "e5", 200); a.LocationID = otherLoc; return a }, wantStatus: assetsys.ResultRejected, wantErr: true},
		{name: "id zero", asset: func() assetsys.Asset { return asset(0, "e6", 200) }, wantStatus: assetsys.ResultRejected, wantErr: true},
		{name: "no event id", asset: func() assetsys.Asset { return asset(assetBase+10, "", 200) }, wantStatus: assetsys.ResultRejected, wantErr: true},
	}
	group := make([]assetsys.Asset, len(tests))
	for i, tt := range tests {
		group[i] = tt.asset()
	}
	results, err := client.PutAssets(ctx, locationID, group)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != len(tests) {
		t.Fatalf("%d results for %d assets", len(results), len(tests))
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := results[i]
			if r.ID != group[i].ID || r.EventID != group[i].EventID {
				t.Errorf("result for %d/%q, want %d/%q", r.ID, r.EventID, group[i].ID, group[i].EventID)
			}
			if r.Status != tt.wantStatus {
				t.Errorf("status %s, want %s (%v)", r.Status, tt.wantStatus, r.Err)
			}
			if (r.Err != nil) != tt.wantErr {
				t.Fatalf("err %v, want error: %v", r.Err, tt.wantErr)
			}
			var rejected *assetsys.RejectedError
			if tt.wantErr && (!failure.IsPermanent(r.Err) || !errors.As(r.Err, &rejected) || rejected.Reason == "") {
				t.Errorf("err %v: want a permanent *RejectedError with a reason", r.Err)
			}
		})
	}

	if got, _ := sim.Asset(assetBase); got.Updated != 201 || got.EventID != "e1" {
		t.Errorf("stored asset %+v: want the version of e1", got)
	}
	if got := sim.Calls(); got != 2 {
		t.Errorf("%d grouped calls, want 2", got)
	}
	if got := sim.Items(); got != 1+len(tests) {
		t.Errorf("%d items, want %d", got, 1+len(tests))
	}
	if v := sim.Violations(); len(v) > 0 {
		t.Errorf("violations %q", v)
	}
}

func TestPutAssetsEmptyMakesNoCall(t *testing.T) {
	sim, client := start(t, assetsim.Config{})
	results, err := client.PutAssets(t.Context(), locationID, nil)
	if err != nil || results != nil {
		t.Fatalf("PutAssets(nil) = %v, %v", results, err)
	}
	if got := sim.Faults().Stats().Requests; got != 0 {
		t.Errorf("%d requests, want none", got)
	}
}

func TestPutAssetsTooManyIsPermanent(t *testing.T) {
	_, client := start(t, assetsim.Config{MaxAssetsPerCall: 2})
	group := []assetsys.Asset{asset(assetBase, "e0", 1), asset(assetBase+2, "e1", 1), asset(assetBase+4, "e2", 1)}
	_, err := client.PutAssets(t.Context(), locationID, group)
	if !failure.IsPermanent(err) || failure.StatusOf(err) != http.StatusRequestEntityTooLarge {
		t.Fatalf("err %v: want permanent 413", err)
	}
}

func TestPutLocation(t *testing.T) {
	sim, client := start(t, assetsim.Config{})
	loc := assetsys.Location{
		ID: locationID, EventID: "l1", CompanyID: 1<<53 + 5, Name: "Plant 4",
		Address: assetsys.Address{Street: "1 Main St", City: "Durham", State: "NC", PostalCode: "27701"},
		Updated: 200,
	}
	older := loc
	older.EventID, older.Name, older.Updated = "l0", "Old name", 100
	invalid := loc
	invalid.EventID, invalid.Name = "l2", ""

	tests := []struct {
		name       string
		loc        assetsys.Location
		wantStatus int // 0: success
	}{
		{name: "new", loc: loc},
		{name: "same event again", loc: loc},
		{name: "older version", loc: older},
		{name: "no name", loc: invalid, wantStatus: http.StatusUnprocessableEntity},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := client.PutLocation(t.Context(), tt.loc)
			if tt.wantStatus == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !failure.IsPermanent(err) || failure.StatusOf(err) != tt.wantStatus {
				t.Fatalf("err %v: want permanent %d", err, tt.wantStatus)
			}
		})
	}
	got, ok := sim.Location(locationID)
	if !ok || got.Name != "Plant 4" || got.ID != locationID || got.CompanyID != 1<<53+5 {
		t.Errorf("stored location %+v", got)
	}
	if n := len(sim.Applied()); n != 1 {
		t.Errorf("%d writes applied, want 1", n)
	}
	if sim.Duplicates() != 1 || sim.Stale() != 1 {
		t.Errorf("duplicates %d, stale %d: want 1 and 1", sim.Duplicates(), sim.Stale())
	}
}

func TestDeleteAsset(t *testing.T) {
	sim, client := start(t, assetsim.Config{})
	ctx := t.Context()
	if _, err := client.PutAssets(ctx, locationID, []assetsys.Asset{asset(assetBase, "put", 200)}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		id         int64
		eventID    string
		wantStatus int // 0: success
	}{
		{name: "existing", id: assetBase, eventID: "del"},
		{name: "same event again", id: assetBase, eventID: "del"},
		{name: "another event after the delete", id: assetBase, eventID: "del2", wantStatus: http.StatusNotFound},
		{name: "never existed", id: assetBase + 2, eventID: "del3", wantStatus: http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := client.DeleteAsset(ctx, tt.id, tt.eventID)
			if tt.wantStatus == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !failure.IsPermanent(err) || failure.StatusOf(err) != tt.wantStatus {
				t.Fatalf("err %v: want permanent %d", err, tt.wantStatus)
			}
		})
	}
	if _, ok := sim.Asset(assetBase); ok {
		t.Error("the asset is still there")
	}
	// A version older than the deleted one does not bring it back.
	results, err := client.PutAssets(ctx, locationID, []assetsys.Asset{asset(assetBase, "late", 150)})
	if err != nil || results[0].Status != assetsys.ResultStale {
		t.Fatalf("late older version: %+v, %v; want stale", results, err)
	}
}

func TestCallerDeadlineWins(t *testing.T) {
	sim, err := assetsim.New(assetsim.Config{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	// The client's own timeout is long; the caller's deadline is short.
	client, err := assetsys.New(assetsys.Config{BaseURL: srv.URL, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	sim.Faults().Set(fault.Faults{LatencyMS: 500})
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	err = client.DeleteAsset(ctx, assetBase, "e")
	if failure.ClassOf(err) != failure.ClassTransient || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v: want a transient deadline error", err)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     assetsys.Config
		wantErr bool
	}{
		{name: "minimal", cfg: assetsys.Config{BaseURL: "http://assets.internal:8080"}},
		{name: "no base URL", cfg: assetsys.Config{}, wantErr: true},
		{name: "not http", cfg: assetsys.Config{BaseURL: "ftp://assets"}, wantErr: true},
		{name: "negative timeout", cfg: assetsys.Config{BaseURL: "https://assets", Timeout: -time.Second}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := assetsys.New(tt.cfg)
			if (err != nil) != tt.wantErr {
				t.Fatalf("New: %v, want error: %v", err, tt.wantErr)
			}
		})
	}
}
