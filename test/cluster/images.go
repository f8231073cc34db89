package cluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"time"

	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
)

// DockerAvailable returns nil if a Docker engine answers within 5 s, else why not.
func DockerAvailable(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	d, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return err
	}
	defer d.Close()
	_, err = d.Ping(ctx, client.PingOptions{})
	return err
}

// BuildImages builds fieldstream/<name>:<tag> for each of names (Images if none) the way
// `make images` does — static binaries of the code in repo, deploy/images/build.sh — but
// without tagging them latest. The binaries are built in a temporary directory.
func BuildImages(ctx context.Context, repo, tag string, names ...string) error {
	if len(names) == 0 {
		names = Images
	}
	bin, err := os.MkdirTemp("", "fieldstream-images-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(bin)
	build := func(dir string, args ...string) error {
		cmd := exec.CommandContext(ctx, "go", append([]string{"build", "-trimpath", "-ldflags=-s -w", "-o", bin + "/"}, args...)...)
		cmd.Dir, cmd.Env = filepath.Join(repo, dir), append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %v: %w\n%s", args, err, out)
		}
		return nil
	}
	var ours []string
	for _, n := range names {
		if n != "nats-server" {
			ours = append(ours, "./services/"+n+"/cmd/"+n)
		}
	}
	if len(ours) > 0 {
		if err := build(".", ours...); err != nil {
			return err
		}
	}
	if slices.Contains(names, "nats-server") {
		if err := build("test", "github.com/nats-io/nats-server/v2"); err != nil {
			return err
		}
		if err := build("pkg", "./probe/cmd/probe"); err != nil {
			return err
		}
	}
	cmd := exec.CommandContext(ctx, filepath.Join(repo, "deploy", "images", "build.sh"), append([]string{tag, bin}, names...)...)
	cmd.Dir, cmd.Env = repo, append(os.Environ(), "IMAGE_LATEST=false")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("deploy/images/build.sh: %w\n%s", err, out)
	}
	return nil
}

// RemoveImages removes the tag of fieldstream/<name>:<tag> for each of names (Images if
// none); an image no other tag names goes with it.
func RemoveImages(ctx context.Context, tag string, names ...string) error {
	if len(names) == 0 {
		names = Images
	}
	d, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return err
	}
	defer d.Close()
	var first error
	for _, n := range names {
		if _, err := d.ImageRemove(ctx, "fieldstream/"+n+":"+tag, client.ImageRemoveOptions{PruneChildren: true}); err != nil && first == nil {
			first = err
		}
	}
	return first
}
