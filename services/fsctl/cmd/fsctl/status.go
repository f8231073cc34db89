package main

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/fieldstream/fieldstream/services/fsctl/ops"
)

type statusCmd struct{}

func (statusCmd) Run(ctx context.Context, e *env) error {
	st, err := ops.GetStatus(ctx, e.js)
	if err != nil {
		return err
	}
	if e.json {
		return e.printJSON(st)
	}
	w := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "STREAM\tMESSAGES\tBYTES\tFIRST\tLAST\tLAST MESSAGE")
	for _, s := range st.Streams {
		fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%d\t%s\n", s.Name, s.Messages, s.Bytes, s.FirstSeq, s.LastSeq, ago(s.LastTime))
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "CONSUMER\tSTREAM\tPENDING\tACK PENDING\tREDELIVERED\tDEAD LETTERS\tLAST ACTIVE\tPAUSED")
	for _, c := range st.Consumers {
		paused := "no"
		if c.Paused {
			paused = "until " + c.PausedUntil.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%d\t%d\t%s\t%s\n", c.Name, c.Stream, c.Pending, c.AckPending, c.Redelivered, c.DeadLetters, ago(c.LastActive), paused)
	}
	if len(st.Replays) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "REPLAY	TO	WINDOW	EVENTS	REMAINING	ACK PENDING	FORCE	LAST ACTIVE	PAUSED")
		for _, r := range st.Replays {
			paused := "no"
			if r.Paused {
				paused = "yes"
			}
			fmt.Fprintf(w, "%s\t%s\t%d..%d\t%d\t%d\t%d\t%v\t%s\t%s\n", r.Name, r.Target, r.FromSeq, r.UntilSeq, r.Events, r.Remaining, r.AckPending, r.Force, ago(r.LastActive), paused)
		}
	}
	if len(st.DeadLetters) > 0 {
		fmt.Fprintln(w)
		printGroups(w, st.DeadLetters)
	}
	if len(st.RejectedTenants) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "REJECTED TENANT RECORD\tREVISION\tSERVED INSTEAD\tWHY")
		for _, r := range st.RejectedTenants {
			served := "nothing: tenant not served"
			if r.Serving > 0 {
				served = fmt.Sprintf("revision %d", r.Serving)
			}
			fmt.Fprintf(w, "%s\t%d\t%s\t%s\n", r.Tenant, r.Revision, served, r.Error)
		}
	}
	return w.Flush()
}
