package wosystem_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/fieldstream/fieldstream/pkg/failure"
	"github.com/fieldstream/fieldstream/services/simulator/workordersys"
	"github.com/fieldstream/fieldstream/services/workorders/wosystem"
)

// orderID is above 2^53 and odd, so no float64 holds it.
const orderID int64 = 1<<53 + 1

func start(t testing.TB, cfg workordersys.Config) (*workordersys.System, *wosystem.Client) {
	t.Helper()
	sim, err := workordersys.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	client, err := wosystem.New(wosystem.Config{BaseURL: srv.URL, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return sim, client
}

func order(eventID string, updated int64) wosystem.WorkOrder {
	return wosystem.WorkOrder{
		ID: orderID, EventID: eventID, Number: "WO-1001", Status: "scheduled", Type: "repair",
		LocationID: 1<<53 + 3, CustomerID: 1<<53 + 5, DueBy: 1767192600, Updated: updated,
	}
}

func TestUpsert(t *testing.T) {
	tests := []struct {
		name       string
		change     func(*wosystem.WorkOrder)
		wantStatus int // 0: success
	}{
		{name: "valid", change: func(*wosystem.WorkOrder) {}},
		{name: "unknown status", change: func(wo *wosystem.WorkOrder) { wo.Status = "done" }, wantStatus: http.StatusUnprocessableEntity},
		{name: "unknown type", change: func(wo *wosystem.WorkOrder) { wo.Type = "cleaning" }, wantStatus: http.StatusUnprocessableEntity},
		{name: "no event id", change: func(wo *wosystem.WorkOrder) { wo.EventID = "" }, wantStatus: http.StatusUnprocessableEntity},
		{name: "no location", change: func(wo *wosystem.WorkOrder) { wo.LocationID = 0 }, wantStatus: http.StatusUnprocessableEntity},
		{name: "no updated", change: func(wo *wosystem.WorkOrder) { wo.Updated = 0 }, wantStatus: http.StatusUnprocessableEntity},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim, client := start(t, workordersys.Config{})
			wo := order("e1", 100)
			tt.change(&wo)
			err := client.Upsert(t.Context(), wo)
			if tt.wantStatus != 0 {
				if !failure.IsPermanent(err) || failure.StatusOf(err) != tt.wantStatus {
					t.Fatalf("err %v: want permanent %d", err, tt.wantStatus)
				}
				if n := len(sim.Applied()); n != 0 {
					t.Errorf("%d writes applied", n)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, ok := sim.WorkOrder(orderID)
			if !ok || got.ID != orderID || got.LocationID != wo.LocationID || got.Status != wo.Status {
				t.Errorf("stored %+v, want %+v", got, wo)
			}
		})
	}
}

func TestDelete(t *testing.T) {
	for _, gone := range []bool{false, true} {
		goneStatus := http.StatusNotFound
		if gone {
			goneStatus = http.StatusGone
		}
		tests := []struct {
			name       string
			id         int64
			eventID    string
			wantStatus int // 0: success
		}{
			{name: "existing", id: orderID, eventID: "del"},
			{name: "same event again", id: orderID, eventID: "del"},
			{name: "another event after the delete", id: orderID, eventID: "del2", wantStatus: goneStatus},
			{name: "never existed", id: orderID + 2, eventID: "del3", wantStatus: http.StatusNotFound},
		}
		sim, client := start(t, workordersys.Config{GoneAfterDelete: gone})
		if err := client.Upsert(t.Context(), order("put", 100)); err != nil {
			t.Fatal(err)
		}
		for _, tt := range tests {
			t.Run(http.StatusText(goneStatus)+"/"+tt.name, func(t *testing.T) {
				err := client.Delete(t.Context(), tt.id, tt.eventID)
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
		if got := sim.Duplicates(); got != 1 {
			t.Errorf("%d duplicates, want 1", got)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     wosystem.Config
		wantErr bool
	}{
		{name: "minimal", cfg: wosystem.Config{BaseURL: "https://workorders.internal"}},
		{name: "no base URL", cfg: wosystem.Config{}, wantErr: true},
		{name: "negative timeout", cfg: wosystem.Config{BaseURL: "https://workorders.internal", Timeout: -1}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := wosystem.New(tt.cfg); (err != nil) != tt.wantErr {
				t.Fatalf("New: %v, want error: %v", err, tt.wantErr)
			}
		})
	}
}
