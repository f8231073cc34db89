package main

import (
	"context"
	"fmt"
	"time"

	"github.com/fieldstream/fieldstream/services/fsctl/ops"
)

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
