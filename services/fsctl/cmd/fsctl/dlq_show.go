package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/fieldstream/fieldstream/services/fsctl/ops"
)

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
