package main

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fieldstream/fieldstream/services/fsctl/ops"
)

// selectionFlags pick dead letters; dlq ls, stats, redrive and purge share them.
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

// list reads the dead letters selected.
func (s selectionFlags) list(ctx context.Context, js jetstream.JetStream) ([]ops.DeadLetter, error) {
	sel, err := s.selection()
	if err != nil {
		return nil, err
	}
	return ops.ListDeadLetters(ctx, js, sel)
}

func (s selectionFlags) empty() bool {
	return s.Consumer == "" && s.Fingerprint == "" && s.Subject == "" && s.Since == ""
}

// dlqCmd groups the dead-letter commands, a file each.
type dlqCmd struct {
	Ls      dlqLsCmd      `cmd:"" help:"list dead letters"`
	Stats   dlqStatsCmd   `cmd:"" help:"dead letters grouped by consumer and failure fingerprint"`
	Show    dlqShowCmd    `cmd:"" help:"one dead letter: provenance and payload"`
	Redrive dlqRedriveCmd `cmd:"" help:"re-deliver dead letters to the consumer that failed them (only to it)"`
	Purge   dlqPurgeCmd   `cmd:"" help:"delete dead letters for good"`
}
