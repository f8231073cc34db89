package main

import (
	"context"
	"errors"

	"github.com/fieldstream/fieldstream/services/fsctl/ops"
)

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
