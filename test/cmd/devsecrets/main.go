// Command devsecrets writes what deploy/nats-server.conf reads for a development or test
// deployment: a fresh CA, a server certificate for loopback (and -hosts), and one nkey per
// service user with the nkeys.env that hands their public keys to the server. `make
// dev-secrets` runs it (with the host names of deploy/compose's nodes), `make cluster-up`
// with -keep; never commit what it writes.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/fieldstream/fieldstream/pkg/envflag"
	"github.com/fieldstream/fieldstream/test/harness"
)

func main() {
	err := run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "devsecrets:", err)
		os.Exit(1)
	}
}

func run(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("devsecrets", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "deploy/dev", "directory to write tls/, nkeys/ and nkeys.env into")
	hosts := fs.String("hosts", "", "further server names or IPs for the certificate, comma-separated (loopback is always in)")
	keep := fs.Bool("keep", false, "keep what -out holds if it is complete and its certificate covers -hosts for another week (make cluster-up)")
	if err := envflag.Parse(fs, args, "FS", nil, getenv); err != nil {
		return err
	}
	var extra []string
	if *hosts != "" {
		extra = strings.Split(*hosts, ",")
	}
	if *keep && harness.SecretsCover(*out, extra) {
		fmt.Fprintf(stdout, "kept %s: its certificate covers %s\n", *out, strings.Join(append([]string{"loopback"}, extra...), ", "))
		return nil
	}
	s, err := harness.WriteSecrets(*out, extra)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s: CA %s, server certificate and key, nkey seeds in %s/nkeys, public keys in %s/nkeys.env\n", s.Dir, s.CA, s.Dir, s.Dir)
	return nil
}
