// Package probe checks a health endpoint over HTTP, for container health checks: an image
// built FROM scratch has no shell and no curl, so its health check runs a binary of the
// image itself. Every fieldstream binary on pkg/daemon answers `<binary> -probe URL`
// (daemon.Main), and images of programs that are not ours (nats-server) carry the probe
// command of this package.
package probe

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

// Timeout bounds one check when the caller's context has no deadline: a health check that
// hangs is a failed one.
const Timeout = 3 * time.Second

// Check asks url with a GET and returns nil if it answers 2xx; otherwise an error with the
// status and the start of the answer's body (a /readyz says why it is not ready).
func Check(ctx context.Context, url string) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, Timeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s answered %d: %s", url, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return nil
}

// URLFromArgs returns the URL of a probe invocation: args (without the program name) of
// exactly "-probe URL", "--probe URL", "-probe=URL" or "--probe=URL".
func URLFromArgs(args []string) (string, bool) {
	switch {
	case len(args) == 2 && (args[0] == "-probe" || args[0] == "--probe"):
		return args[1], true
	case len(args) == 1:
		for _, p := range []string{"-probe=", "--probe="} {
			if url, ok := strings.CutPrefix(args[0], p); ok {
				return url, true
			}
		}
	}
	return "", false
}

// Exit checks url and exits the process: 0 if healthy, 1 (with the reason on stderr) if
// not. It is what `<binary> -probe URL` runs.
func Exit(url string) {
	if err := Check(context.Background(), url); err != nil {
		fmt.Fprintln(os.Stderr, "probe:", err)
		os.Exit(1)
	}
	os.Exit(0)
}
