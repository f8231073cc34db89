package main

import (
	"context"
	"text/tabwriter"

	"github.com/fieldstream/fieldstream/services/fsctl/ops"
)

type dlqStatsCmd struct{ selectionFlags }

func (c dlqStatsCmd) Run(ctx context.Context, e *env) error {
	letters, err := c.list(ctx, e.js)
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
