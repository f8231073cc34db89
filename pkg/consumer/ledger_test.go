package consumer

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/fieldstream/fieldstream/pkg/natstest"
)

// TestClaimLosesToAConcurrentClaim: two replicas of a consumer (two ledgers on one bucket)
// read an entity's record at the same time and both claim it. The second claim is refused,
// whether it goes out alone, pipelined or in an atomic batch, and names the entity; claims
// of other entities in the same atomic batch are refused with it and stored on the next
// attempt.
func TestClaimLosesToAConcurrentClaim(t *testing.T) {
	for _, tt := range []struct {
		n      int
		writes LedgerWrites
	}{{1, LedgerAtomic}, {atomicFrom, LedgerAtomic}, {2 * maxAtomic / 3, LedgerAtomic}, {atomicFrom, LedgerPipelined}} {
		n := tt.n
		t.Run(fmt.Sprintf("%d claims %s", n, tt.writes), func(t *testing.T) {
			_, js := natstest.Connect(t, natstest.RunServer(t))
			ctx := context.Background()
			replica1, err := OpenLedger(ctx, js, "c", 0, 1)
			if err != nil {
				t.Fatal(err)
			}
			replica1.WriteClaims(tt.writes)
			replica2, err := OpenLedger(ctx, js, "c", 0, 1)
			if err != nil {
				t.Fatal(err)
			}
			entities := make([]string, n)
			for i := range entities {
				entities[i] = fmt.Sprintf("t.asset.%d", i+1)
			}
			read1, err := replica1.readRecords(ctx, entities)
			if err != nil {
				t.Fatal(err)
			}
			// Replica 2 claims the last entity first, with a newer change.
			last := entities[n-1]
			if conflicts, err := replica2.writeClaims(ctx, []claim{{entity: last, rec: entityRecord{version: version{Time: 2, Seq: 2}, ID: "newer", Batch: "b2"}}}, true); err != nil || len(conflicts) != 0 {
				t.Fatalf("the first claim: conflicts %v, %v", conflicts, err)
			}
			claims := make([]claim, n)
			for i, e := range entities {
				claims[i] = claim{entity: e, rev: read1[e].rev, rec: entityRecord{version: version{Time: 1, Seq: 1}, ID: "older-" + e, Batch: "b1"}}
			}
			conflicts, err := replica1.writeClaims(ctx, claims, true)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Contains(conflicts, last) {
				t.Fatalf("conflicts %v lack %s, which replica 2 claimed", conflicts, last)
			}
			if (n < atomicFrom || tt.writes == LedgerPipelined) && len(conflicts) != 1 {
				t.Fatalf("claims sent one by one: conflicts %v, want only %s", conflicts, last)
			}
			again, err := replica1.readRecords(ctx, entities)
			if err != nil {
				t.Fatal(err)
			}
			if r := again[last]; r.ID != "newer" || r.Batch != "b2" {
				t.Fatalf("%s holds %+v, want replica 2's claim", last, r)
			}
			// The rest, claimed again on what was read anew, are stored.
			var retry []claim
			for _, c := range claims[:n-1] {
				c.rev = again[c.entity].rev
				retry = append(retry, c)
			}
			if len(retry) > 0 {
				if conflicts, err := replica1.writeClaims(ctx, retry, true); err != nil || len(conflicts) != 0 {
					t.Fatalf("claims retried: conflicts %v, %v", conflicts, err)
				}
			}
			final, err := replica2.readRecords(ctx, entities)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entities[:n-1] {
				if final[e].ID != "older-"+e {
					t.Fatalf("%s holds %+v after the retry", e, final[e])
				}
			}
		})
	}
}

// TestHandledBatchMarksWhatItApplied: an entity's claim counts as applied only once its
// batch is marked handled, and not for the events the marker lists as failed; another
// replica, which never saw the marker written, reads it.
func TestHandledBatchMarksWhatItApplied(t *testing.T) {
	_, js := natstest.Connect(t, natstest.RunServer(t))
	ctx := context.Background()
	l, err := OpenLedger(ctx, js, "c", 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	claims := []claim{
		{entity: "t.asset.1", rec: entityRecord{version: version{Time: 1, Seq: 1}, ID: "ok", Batch: "b"}},
		{entity: "t.asset.2", rec: entityRecord{version: version{Time: 1, Seq: 2}, ID: "failed", Batch: "b"}},
	}
	if conflicts, err := l.writeClaims(ctx, claims, true); err != nil || len(conflicts) != 0 {
		t.Fatalf("claims: %v, %v", conflicts, err)
	}
	other, err := OpenLedger(ctx, js, "c", 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := other.readRecords(ctx, []string{"t.asset.1", "t.asset.2"})
	if err != nil {
		t.Fatal(err)
	}
	if recs["t.asset.1"].applied || recs["t.asset.2"].applied {
		t.Fatalf("claimed, not handled, reads applied: %+v", recs)
	}
	if err := l.markHandled(ctx, "b", []string{"failed"}); err != nil {
		t.Fatal(err)
	}
	other, _ = OpenLedger(ctx, js, "c", 0, 1) // no marker in memory
	recs, err = other.readRecords(ctx, []string{"t.asset.1", "t.asset.2"})
	if err != nil {
		t.Fatal(err)
	}
	if !recs["t.asset.1"].applied || recs["t.asset.2"].applied {
		t.Fatalf("after the marker: %+v", recs)
	}
}

// TestLedgerReadsTheFormatBeforeBatches: a ledger written by the version before batches —
// a claim without a batch, and applied.<digest> for what was applied — still says which
// events were applied.
func TestLedgerReadsTheFormatBeforeBatches(t *testing.T) {
	_, js := natstest.Connect(t, natstest.RunServer(t))
	ctx := context.Background()
	l, err := OpenLedger(ctx, js, "c", 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	for key, value := range map[string]string{
		"version.t.asset.1":                    `{"time":1,"seq":1,"id":"applied-before"}`,
		"version.t.asset.2":                    `{"time":1,"seq":2,"id":"claimed-before"}`,
		eventKey("applied.", "applied-before"): time.Now().Format(time.RFC3339Nano),
	} {
		if _, err := l.kv.Put(ctx, key, []byte(value)); err != nil {
			t.Fatal(err)
		}
	}
	recs, err := l.readRecords(ctx, []string{"t.asset.1", "t.asset.2"})
	if err != nil {
		t.Fatal(err)
	}
	if r := recs["t.asset.1"]; !r.names("applied-before") || !r.applied {
		t.Fatalf("t.asset.1: %+v, want applied-before applied", r)
	}
	if r := recs["t.asset.2"]; !r.names("claimed-before") || r.applied {
		t.Fatalf("t.asset.2: %+v, want claimed-before claimed, not applied", r)
	}
}
