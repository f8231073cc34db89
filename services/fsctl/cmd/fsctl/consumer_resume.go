package main

import (
	"context"
	"fmt"

	"github.com/fieldstream/fieldstream/services/fsctl/ops"
)

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
