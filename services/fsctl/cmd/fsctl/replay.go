package main

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/fieldstream/fieldstream/services/fsctl/ops"
)

type replayCmd struct {
	Consumer string  `required:"" help:"the consumer to re-deliver to; no other consumer sees anything"`
	Since    string  `help:"window start: RFC 3339 time or duration ago (2h)" xor:"start"`
	FromSeq  uint64  `name:"from-seq" help:"window start: EVENTS sequence" xor:"start"`
	Until    string  `help:"window end (exclusive): RFC 3339 time or duration ago; default: the last event now stored"`
	UntilSeq uint64  `name:"until-seq" help:"window end (inclusive): EVENTS sequence"`
	Subject  string  `help:"only events on this subject filter, e.g. 'events.acme.work_order.>'"`
	DryRun   bool    `name:"dry-run" help:"count what would be replayed, per subject, and stop"`
	Rate     float64 `help:"re-deliveries per second (0: unlimited)"`
	Force    bool    `help:"apply even events the consumer's ledger says it applied"`
}

func (r replayCmd) Run(ctx context.Context, e *env) error {
	since, err := when(r.Since)
	if err != nil {
		return fmt.Errorf("--since %w", err)
	}
	until, err := when(r.Until)
	if err != nil {
		return fmt.Errorf("--until %w", err)
	}
	spec := ops.ReplaySpec{Consumer: r.Consumer, FromSeq: r.FromSeq, Since: since, UntilSeq: r.UntilSeq, Until: until,
		Subject: r.Subject, Rate: r.Rate, Force: r.Force}
	var bar *progressbar.ProgressBar
	progress := func(sent, total int) {
		if e.json {
			return
		}
		if bar == nil {
			bar = progressbar.NewOptions(total, progressbar.OptionSetWriter(e.stderr), progressbar.OptionShowCount(),
				progressbar.OptionShowIts(), progressbar.OptionSetItsString("events"), progressbar.OptionSetPredictTime(true),
				progressbar.OptionSetDescription("replaying to "+r.Consumer), progressbar.OptionThrottle(200*time.Millisecond))
		}
		_ = bar.Set(sent)
	}
	res, err := ops.Replay(ctx, e.js, spec, r.DryRun, progress)
	if bar != nil {
		_ = bar.Finish()
		fmt.Fprintln(e.stderr)
	}
	if err != nil {
		return err
	}
	if e.json {
		return e.printJSON(res)
	}
	verb := "replayed"
	if r.DryRun {
		verb = "would replay"
	}
	fmt.Fprintf(e.stdout, "%s %d events (EVENTS %d..%d) to %s", verb, res.Total, res.FromSeq, res.UntilSeq, res.Consumer)
	if res.Force {
		fmt.Fprint(e.stdout, ", forced past the ledger")
	}
	fmt.Fprintln(e.stdout)
	if r.DryRun {
		w := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(w, "SUBJECT\tEVENTS")
		for s, n := range res.BySubject {
			fmt.Fprintf(w, "%s\t%d\n", s, n)
		}
		return w.Flush()
	}
	if res.Stopped {
		return fmt.Errorf("interrupted: %d of %d events re-delivered, up to EVENTS sequence %d; resume with --from-seq %d", res.Sent, res.Total, res.LastSeq, res.LastSeq+1)
	}
	return nil
}
