package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/fieldstream/fieldstream/services/fsctl/ops"
)

type employeesImportCmd struct {
	Source string `arg:"" help:"a JSON file, - for standard input, or an http(s) URL answering the JSON (an HR export, the simulator's /admin/feed/employees)"`
}

func (c employeesImportCmd) Run(ctx context.Context, e *env) error {
	b, err := readSource(ctx, c.Source)
	if err != nil {
		return err
	}
	var codes map[int64]string
	if err := json.Unmarshal(b, &codes); err != nil {
		return fmt.Errorf("%s: want a JSON object {\"<ServiceTrade user id>\":\"<payroll employee code>\"}: %w", c.Source, err)
	}
	n, err := ops.ImportEmployees(ctx, e.js, codes)
	if err != nil {
		return fmt.Errorf("mapped %d employees, then: %w", n, err)
	}
	if e.json {
		return e.printJSON(map[string]any{"mapped": n})
	}
	fmt.Fprintf(e.stdout, "mapped %d employees\n", n)
	return nil
}

// readSource reads a file, standard input (-) or what an http(s) URL answers (2xx only,
// at most 16 MiB, within 30 s).
func readSource(ctx context.Context, src string) ([]byte, error) {
	const limit = 16 << 20
	switch {
	case src == "-":
		return io.ReadAll(io.LimitReader(os.Stdin, limit))
	case strings.HasPrefix(src, "http://") || strings.HasPrefix(src, "https://"):
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, src, nil)
		if err != nil {
			return nil, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return nil, fmt.Errorf("%s answered %s", src, resp.Status)
		}
		return io.ReadAll(io.LimitReader(resp.Body, limit))
	default:
		return os.ReadFile(src)
	}
}
