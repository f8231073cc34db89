package main

import (
	"context"
	"fmt"

	"github.com/fieldstream/fieldstream/services/fsctl/ops"
)

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
