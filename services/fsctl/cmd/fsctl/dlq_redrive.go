package main

import (
	"context"

	"github.com/fieldstream/fieldstream/services/fsctl/ops"
)

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
