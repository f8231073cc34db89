// Command fsctl is fieldstream's operator tool: backlog and dead letters at a glance,
// replays to one consumer, dead-letter redrive and purge, new and paused consumers. It
// connects the way the nats CLI does (--server or NATS_URL, --creds, TLS options, nats CLI
// contexts) and answers --json everywhere.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/alecthomas/kong"
	"github.com/nats-io/jsm.go/natscontext"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/schollz/progressbar/v3"

	"github.com/fieldstream/fieldstream/services/fsctl/dashboard"
	"github.com/fieldstream/fieldstream/services/fsctl/ops"
)

type cli struct {
	Server   string `help:"NATS server URL(s)" env:"NATS_URL" default:"nats://127.0.0.1:4222"`
	Creds    string `help:"NATS credentials file" env:"NATS_CREDS" type:"existingfile"`
	User     string `help:"NATS username" env:"NATS_USER"`
	Password string `help:"NATS password" env:"NATS_PASSWORD"`
	NKey     string `name:"nkey" help:"file holding a NATS user's nkey seed" env:"NATS_NKEY" type:"existingfile"`
	Context  string `help:"nats CLI context to connect with (default: the selected one, if --server and NATS_URL are not set)" env:"NATS_CONTEXT"`
	TLSCert  string `name:"tlscert" help:"client TLS certificate" env:"NATS_CERT" type:"existingfile"`
	TLSKey   string `name:"tlskey" help:"client TLS key" env:"NATS_KEY" type:"existingfile"`
	TLSCA    string `name:"tlsca" help:"CA certificate to verify the server" env:"NATS_CA" type:"existingfile"`
	JSON     bool   `help:"print JSON for scripts"`

	Setup     setupCmd     `cmd:"" help:"create or update the streams of streams/ and the shared KV buckets (run once per deployment, as the admin)"`
	Status    statusCmd    `cmd:"" help:"streams, consumers (pending, ack pending, redelivered, last activity, paused) and dead letters"`
	Replay    replayCmd    `cmd:"" help:"re-deliver a window of EVENTS to one consumer only"`
	DLQ       dlqCmd       `cmd:"" name:"dlq" help:"inspect, redrive and purge dead letters"`
	Consumer  consumerCmd  `cmd:"" help:"add, pause and resume consumers"`
	Dashboard dashboardCmd `cmd:"" help:"serve the live operations dashboard"`
}

type env struct {
	js     jetstream.JetStream
	json   bool
	stdout io.Writer
	stderr io.Writer
}

func main() {
	var c cli
	k := kong.Parse(&c, kong.Name("fsctl"), kong.UsageOnError(),
		kong.Description("fieldstream operator tool. Connects like the nats CLI: --server/NATS_URL, --creds, TLS, --context."))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	nc, err := connect(c, os.Getenv)
	if err == nil {
		defer nc.Close()
		var js jetstream.JetStream
		if js, err = jetstream.New(nc); err == nil {
			k.BindTo(ctx, (*context.Context)(nil))
			err = k.Run(&env{js: js, json: c.JSON, stdout: os.Stdout, stderr: os.Stderr})
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "fsctl:", oneLine(err))
		os.Exit(1)
	}
}

func connect(c cli, getenv func(string) string) (*nats.Conn, error) {
	opts := []nats.Option{nats.Name("fsctl"), nats.Timeout(5 * time.Second)}
	name := c.Context
	if name == "" && getenv("NATS_URL") == "" && !serverGiven() {
		name = natscontext.SelectedContext()
	}
	if name != "" {
		nc, err := natscontext.Connect(name, opts...)
		if err != nil {
			return nil, fmt.Errorf("connect with nats context %q: %w", name, err)
		}
		return nc, nil
	}
	if c.Creds != "" {
		opts = append(opts, nats.UserCredentials(c.Creds))
	}
	if c.User != "" {
		opts = append(opts, nats.UserInfo(c.User, c.Password))
	}
	if c.NKey != "" {
		opt, err := nats.NkeyOptionFromSeed(c.NKey)
		if err != nil {
			return nil, fmt.Errorf("--nkey %s: %w", c.NKey, err)
		}
		opts = append(opts, opt)
	}
	if c.TLSCert != "" || c.TLSKey != "" {
		opts = append(opts, nats.ClientCert(c.TLSCert, c.TLSKey))
	}
	if c.TLSCA != "" {
		opts = append(opts, nats.RootCAs(c.TLSCA))
	}
	nc, err := nats.Connect(c.Server, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s: %w (is it running? `make run` starts one)", c.Server, err)
	}
	return nc, nil
}

func serverGiven() bool {
	for _, a := range os.Args[1:] {
		if a == "--server" || strings.HasPrefix(a, "--server=") {
			return true
		}
	}
	return false
}

func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", "; ") }

func (e *env) printJSON(v any) error {
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// when parses an RFC 3339 time or a duration ago ("2h").
func when(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return time.Now().Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q: want an RFC 3339 time (2026-11-29T08:00:00Z) or a duration ago (2h)", s)
	}
	return t, nil
}

func ago(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return time.Since(t).Round(time.Second).String() + " ago"
}

// setup

type setupCmd struct {
	Replicas int `help:"replicas of every stream and shared bucket (0 keeps the definitions'; 3 on a cluster)"`
}

func (c setupCmd) Run(ctx context.Context, e *env) error {
	done, err := ops.Setup(ctx, e.js, c.Replicas)
	if err != nil {
		return err
	}
	if e.json {
		return e.printJSON(map[string]any{"applied": done})
	}
	fmt.Fprintf(e.stdout, "applied %s\n", strings.Join(done, ", "))
	return nil
}

// status

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
	if len(st.DeadLetters) > 0 {
		fmt.Fprintln(w)
		printGroups(w, st.DeadLetters)
	}
	return w.Flush()
}

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

// replay

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

// dlq

type selectionFlags struct {
	Consumer    string `help:"only this consumer's dead letters"`
	Fingerprint string `help:"only this kind of failure (see dlq stats)"`
	Subject     string `help:"only dead letters of events on this subject filter"`
	Since       string `help:"only those that last failed at or after: RFC 3339 time or duration ago"`
}

func (s selectionFlags) selection() (ops.Selection, error) {
	since, err := when(s.Since)
	if err != nil {
		return ops.Selection{}, fmt.Errorf("--since %w", err)
	}
	return ops.Selection{Consumer: s.Consumer, Fingerprint: s.Fingerprint, Subject: s.Subject, Since: since}, nil
}

func (s selectionFlags) empty() bool {
	return s.Consumer == "" && s.Fingerprint == "" && s.Subject == "" && s.Since == ""
}

type dlqCmd struct {
	Ls      dlqLsCmd      `cmd:"" help:"list dead letters"`
	Stats   dlqStatsCmd   `cmd:"" help:"dead letters grouped by consumer and failure fingerprint"`
	Show    dlqShowCmd    `cmd:"" help:"one dead letter: provenance and payload"`
	Redrive dlqRedriveCmd `cmd:"" help:"re-deliver dead letters to the consumer that failed them (only to it)"`
	Purge   dlqPurgeCmd   `cmd:"" help:"delete dead letters for good"`
}

type dlqLsCmd struct{ selectionFlags }

func (c dlqLsCmd) Run(ctx context.Context, e *env) error {
	sel, err := c.selection()
	if err != nil {
		return err
	}
	letters, err := ops.ListDeadLetters(ctx, e.js, sel)
	if err != nil {
		return err
	}
	if e.json {
		return e.printJSON(letters)
	}
	w := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "SEQ\tCONSUMER\tFINGERPRINT\tCLASS\tATTEMPTS\tLAST FAILURE\tSUBJECT\tERROR")
	for _, d := range letters {
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", d.Sequence, d.Consumer, d.Fingerprint, d.Class, d.Attempts,
			d.LastFailure.UTC().Format(time.RFC3339), d.Original, truncate(d.Error, 80))
	}
	return w.Flush()
}

type dlqStatsCmd struct{ selectionFlags }

func (c dlqStatsCmd) Run(ctx context.Context, e *env) error {
	sel, err := c.selection()
	if err != nil {
		return err
	}
	letters, err := ops.ListDeadLetters(ctx, e.js, sel)
	if err != nil {
		return err
	}
	groups := ops.GroupDeadLetters(letters)
	if e.json {
		return e.printJSON(groups)
	}
	w := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	printGroups(w, groups)
	return w.Flush()
}

type dlqShowCmd struct {
	Seq uint64 `arg:"" help:"DLQ sequence (see dlq ls)"`
}

func (c dlqShowCmd) Run(ctx context.Context, e *env) error {
	d, err := ops.GetDeadLetter(ctx, e.js, c.Seq)
	if err != nil {
		return err
	}
	if e.json {
		return e.printJSON(struct {
			ops.DeadLetter
			Headers map[string][]string `json:"headers"`
			Payload json.RawMessage     `json:"payload"`
		}{d, d.Header, json.RawMessage(d.Data)})
	}
	fmt.Fprintf(e.stdout, "dead letter %d on %s\n", d.Sequence, d.Subject)
	for k, v := range d.Header {
		fmt.Fprintf(e.stdout, "  %s: %s\n", k, strings.Join(v, ", "))
	}
	fmt.Fprintln(e.stdout)
	var pretty map[string]any
	if json.Unmarshal(d.Data, &pretty) == nil {
		b, _ := json.MarshalIndent(json.RawMessage(d.Data), "", "  ")
		fmt.Fprintln(e.stdout, string(b))
	} else {
		fmt.Fprintln(e.stdout, string(d.Data))
	}
	return nil
}

type dlqRedriveCmd struct {
	selectionFlags
	DryRun bool `name:"dry-run" help:"count what would be redriven and stop"`
}

func (c dlqRedriveCmd) Run(ctx context.Context, e *env) error {
	sel, err := c.selection()
	if err != nil {
		return err
	}
	letters, err := ops.Redrive(ctx, e.js, sel, c.DryRun)
	if err != nil {
		return err
	}
	return e.report(letters, c.DryRun, "redriven", "would redrive", "each leaves DLQ once its consumer has acknowledged it")
}

type dlqPurgeCmd struct {
	selectionFlags
	All    bool `help:"purge every dead letter (required when nothing is selected)"`
	DryRun bool `name:"dry-run" help:"count what would be purged and stop"`
}

func (c dlqPurgeCmd) Run(ctx context.Context, e *env) error {
	if c.empty() && !c.All {
		return errors.New("dlq purge: select what to purge (--consumer, --fingerprint, --subject, --since) or say --all")
	}
	sel, err := c.selection()
	if err != nil {
		return err
	}
	letters, err := ops.Purge(ctx, e.js, sel, c.DryRun)
	if err != nil {
		return err
	}
	return e.report(letters, c.DryRun, "purged", "would purge", "")
}

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

// consumer

type consumerCmd struct {
	Add    consumerAddCmd    `cmd:"" help:"subscribe a new durable consumer to EVENTS"`
	Pause  consumerPauseCmd  `cmd:"" help:"pause a consumer (JetStream consumer pause)"`
	Resume consumerResumeCmd `cmd:"" help:"resume a paused consumer"`
}

type consumerAddCmd struct {
	Name        string   `arg:"" help:"durable name"`
	Subjects    []string `required:"" help:"filter subjects, comma-separated, e.g. 'events.*.asset.>'"`
	Deliver     string   `default:"all" help:"where to start: all, new, since=<RFC 3339 time>"`
	Description string   `help:"shown by nats consumer report"`
}

func (c consumerAddCmd) Run(ctx context.Context, e *env) error {
	info, err := ops.AddConsumer(ctx, e.js, c.Name, c.Subjects, ops.Deliver(c.Deliver), c.Description)
	if err != nil {
		return err
	}
	if e.json {
		return e.printJSON(info)
	}
	fmt.Fprintf(e.stdout, "consumer %s added on %s: %d events pending\n", info.Name, info.Stream, info.NumPending)
	return nil
}

type consumerPauseCmd struct {
	Name  string `arg:""`
	Until string `default:"24h" help:"until when: RFC 3339 time or a duration from now"`
}

func (c consumerPauseCmd) Run(ctx context.Context, e *env) error {
	until, err := time.Parse(time.RFC3339, c.Until)
	if err != nil {
		d, derr := time.ParseDuration(c.Until)
		if derr != nil {
			return fmt.Errorf("--until %q: want an RFC 3339 time or a duration from now", c.Until)
		}
		until = time.Now().Add(d)
	}
	got, err := ops.PauseConsumer(ctx, e.js, c.Name, until)
	if err != nil {
		return err
	}
	if e.json {
		return e.printJSON(map[string]any{"consumer": c.Name, "paused_until": got})
	}
	fmt.Fprintf(e.stdout, "consumer %s paused until %s\n", c.Name, got.UTC().Format(time.RFC3339))
	return nil
}

type consumerResumeCmd struct {
	Name string `arg:""`
}

func (c consumerResumeCmd) Run(ctx context.Context, e *env) error {
	if err := ops.ResumeConsumer(ctx, e.js, c.Name); err != nil {
		return err
	}
	if e.json {
		return e.printJSON(map[string]any{"consumer": c.Name, "paused": false})
	}
	fmt.Fprintf(e.stdout, "consumer %s resumed\n", c.Name)
	return nil
}

// dashboard

type dashboardCmd struct {
	Addr string `default:"127.0.0.1:8090" help:"listen address (keep it where only operators reach it)"`
}

func (c dashboardCmd) Run(ctx context.Context, e *env) error {
	dash, err := dashboard.New(e.js, dashboard.Options{})
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/dashboard/", dash)
	mux.Handle("GET /{$}", http.RedirectHandler("/dashboard/", http.StatusFound))
	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { <-ctx.Done(); _ = srv.Close() }()
	fmt.Fprintf(e.stderr, "dashboard: http://%s/dashboard/ (Ctrl-C stops)\n", ln.Addr())
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
