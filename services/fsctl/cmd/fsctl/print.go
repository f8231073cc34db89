package main

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/fieldstream/fieldstream/services/fsctl/ops"
)

// printJSON prints v indented, for --json.
func (e *env) printJSON(v any) error {
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// ago says how long ago t was, "never" for the zero time.
func ago(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return time.Since(t).Round(time.Second).String() + " ago"
}

// printGroups prints dead-letter groups as table rows; status and dlq stats share it.
func printGroups(w io.Writer, groups []ops.Group) {
	fmt.Fprintln(w, "DEAD LETTERS\tFINGERPRINT\tCLASS\tCOUNT\tFIRST SEEN\tLAST SEEN\tSAMPLE")
	for _, g := range groups {
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\t%s\t%s: %s\n", g.Consumer, g.Fingerprint, g.Class, g.Count,
			g.FirstSeen.UTC().Format(time.RFC3339), g.LastSeen.UTC().Format(time.RFC3339), g.SampleSubj, truncate(g.Sample, 100))
	}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// report prints what dlq redrive or purge did (done) or would do (would, on a dry run),
// with note after a real run that touched something.
func (e *env) report(letters []ops.DeadLetter, dryRun bool, done, would, note string) error {
	if e.json {
		seqs := make([]uint64, len(letters))
		for i, d := range letters {
			seqs[i] = d.Sequence
		}
		return e.printJSON(map[string]any{"count": len(letters), "dry_run": dryRun, "sequences": seqs})
	}
	verb := done
	if dryRun {
		verb = would
	}
	groups := ops.GroupDeadLetters(letters)
	fmt.Fprintf(e.stdout, "%s %d dead letters in %d groups", verb, len(letters), len(groups))
	if note != "" && !dryRun && len(letters) > 0 {
		fmt.Fprintf(e.stdout, "; %s", note)
	}
	fmt.Fprintln(e.stdout)
	return nil
}
