package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/fieldstream/fieldstream/services/fsctl/ops"
)

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
