package main

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"
)

type dlqLsCmd struct{ selectionFlags }

func (c dlqLsCmd) Run(ctx context.Context, e *env) error {
	letters, err := c.list(ctx, e.js)
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
