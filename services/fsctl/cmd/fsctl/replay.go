package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/fieldstream/fieldstream/services/fsctl/ops"
)

type replayCmd struct {
	Consumer     string        `help:"the consumer to re-deliver to; no other consumer sees anything"`
	Since        string        `help:"window start: RFC 3339 time or duration ago (2h)" xor:"start"`
	FromSeq      uint64        `name:"from-seq" help:"window start: EVENTS sequence" xor:"start"`
	Until        string        `help:"window end (exclusive): RFC 3339 time or duration ago; default: the last event now stored"`
	UntilSeq     uint64        `name:"until-seq" help:"window end (inclusive): EVENTS sequence"`
	Subject      string        `help:"only events on this subject filter within the consumer's, e.g. 'events.acme.work_order.>'"`
	DryRun       bool          `name:"dry-run" help:"count what would be replayed, per subject, and stop"`
	Rate         float64       `help:"events per second each replica of the consumer applies (0: unlimited)"`
	Force        bool          `help:"apply even events the consumer's ledger says it applied"`
	Detach       bool          `help:"start the replay and return; the service runs it (follow it with --resume NAME)"`
	Paused       bool          `help:"create the replay paused, to start later with --resume NAME (implies --detach)"`
	AbandonAfter time.Duration `name:"abandon-after" default:"24h" help:"a replay nobody pulls (paused, or its service down) this long is deleted"`
	Resume       string        `help:"resume the paused replay NAME (e.g. workorders-replay-1) and follow it" xor:"action" placeholder:"NAME"`
	Cancel       string        `help:"cancel the replay NAME; what it applied stays applied" xor:"action" placeholder:"NAME"`
}

func (r replayCmd) Run(ctx context.Context, e *env) error {
	switch {
	case r.Cancel != "":
		if err := ops.CancelReplay(ctx, e.js, r.Cancel); err != nil {
			return err
		}
		if e.json {
			return e.printJSON(map[string]string{"cancelled": r.Cancel})
		}
		fmt.Fprintf(e.stdout, "cancelled %s\n", r.Cancel)
		return nil
	case r.Resume != "":
		if err := ops.ResumeReplay(ctx, e.js, r.Resume); err != nil {
			return err
		}
		res, err := ops.FollowReplay(ctx, e.js, r.Resume, r.progressBar(e, r.Resume))
		return r.report(e, res, err)
	case r.Consumer == "":
		return errors.New("replay: which consumer? (--consumer, or --resume/--cancel NAME)")
	}
	since, err := when(r.Since)
	if err != nil {
		return fmt.Errorf("--since %w", err)
	}
	until, err := when(r.Until)
	if err != nil {
		return fmt.Errorf("--until %w", err)
	}
	spec := ops.ReplaySpec{Consumer: r.Consumer, FromSeq: r.FromSeq, Since: since, UntilSeq: r.UntilSeq, Until: until,
		Subject: r.Subject, Rate: r.Rate, Force: r.Force, AbandonAfter: r.AbandonAfter, Paused: r.Paused}
	r.Detach = r.Detach || r.Paused
	var res ops.ReplayResult
	switch {
	case r.Detach && !r.DryRun:
		res, err = ops.StartReplay(ctx, e.js, spec)
	default:
		res, err = ops.Replay(ctx, e.js, spec, r.DryRun, r.progressBar(e, "replaying to "+r.Consumer))
	}
	return r.report(e, res, err)
}

// progressBar draws the replay's progress on stderr, with rate and ETA, unless --json, and
// says so once when no replica of the service pulls the replay.
func (r replayCmd) progressBar(e *env, what string) func(ops.ReplayProgress) {
	var bar *progressbar.ProgressBar
	warned := false
	return func(p ops.ReplayProgress) {
		if e.json {
			return
		}
		if bar == nil {
			bar = progressbar.NewOptions(p.Total, progressbar.OptionSetWriter(e.stderr), progressbar.OptionShowCount(),
				progressbar.OptionShowIts(), progressbar.OptionSetItsString("events"), progressbar.OptionSetPredictTime(true),
				progressbar.OptionSetDescription(what), progressbar.OptionThrottle(200*time.Millisecond),
				progressbar.OptionOnCompletion(func() { fmt.Fprintln(e.stderr) }))
		}
		if p.Unpulled >= unpulledWarning && !warned {
			warned = true
			fmt.Fprintf(e.stderr, "\nno replica of the consumer has pulled this replay for %s: is its service running, at a version that runs replays? (the replay waits; Ctrl-C pauses it)\n", p.Unpulled.Round(time.Second))
		}
		_ = bar.Set(p.Replayed)
	}
}

// unpulledWarning is how long a replay may go unpulled before fsctl says so.
const unpulledWarning = 5 * time.Second

func (r replayCmd) report(e *env, res ops.ReplayResult, err error) error {
	if err != nil {
		return err
	}
	if e.json {
		return e.printJSON(res)
	}
	if res.Total == 0 && res.Replay == "" {
		fmt.Fprintf(e.stdout, "nothing to replay: no event of %v in EVENTS %d..%d\n", res.Filters, res.FromSeq, res.UntilSeq)
		return nil
	}
	verb := "replayed"
	switch {
	case res.DryRun:
		verb = "would replay"
	case res.Paused && r.Paused:
		verb = "created, paused, the replay of"
	case res.Paused:
		verb = "paused after replaying " + fmt.Sprint(res.Replayed) + " of"
	case r.Detach:
		verb = "replaying"
	}
	fmt.Fprintf(e.stdout, "%s %d events (EVENTS %d..%d", verb, res.Total, res.FromSeq, res.UntilSeq)
	if res.Replay != "" {
		fmt.Fprintf(e.stdout, ", replay %s", res.Replay)
	}
	fmt.Fprintf(e.stdout, ") to %s", res.Consumer)
	if res.Force {
		fmt.Fprint(e.stdout, ", forced past the ledger")
	}
	fmt.Fprintln(e.stdout)
	if res.DryRun {
		subjects := make([]string, 0, len(res.BySubject))
		for s := range res.BySubject {
			subjects = append(subjects, s)
		}
		sort.Strings(subjects)
		w := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(w, "SUBJECT\tEVENTS")
		for _, s := range subjects {
			fmt.Fprintf(w, "%s\t%d\n", s, res.BySubject[s])
		}
		return w.Flush()
	}
	if res.Paused && !r.Paused {
		return fmt.Errorf("interrupted: replay %s paused after %d of %d events; resume with fsctl replay --resume %s, or cancel with --cancel %s (left paused, it is deleted after %s)",
			res.Replay, res.Replayed, res.Total, res.Replay, res.Replay, r.AbandonAfter)
	}
	return nil
}
