// Command resources writes the declarative forms of fieldstream's JetStream definitions —
// NACK custom resources (deploy/nack/jetstream.yaml, at the replicas of a three-node
// cluster) and the Terraform module's resources (deploy/terraform/jetstream/resources.tf)
// — and the NATS users of deploy/nats-server.conf as values of the official nats chart
// (deploy/helm/nats-auth-values.yaml). `make resources` runs it from deploy/; tests fail
// when the files differ from what it would write.
//
//	resources [-streams ../streams] [-out .] [-replicas 3]
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/fieldstream/fieldstream/deploy/natsauth"
	"github.com/fieldstream/fieldstream/deploy/resources"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "resources:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("resources", flag.ContinueOnError)
	dir := fs.String("streams", "../streams", "the streams directory (stream files, consumers/)")
	out := fs.String("out", ".", "the deploy directory to write nack/ and terraform/jetstream/ into")
	replicas := fs.Int("replicas", resources.ClusterReplicas, "replicas of every stream and bucket in the NACK resources")
	if err := fs.Parse(args); err != nil {
		return err
	}
	files, err := resources.Files(*dir, *replicas)
	if err != nil {
		return err
	}
	if files[natsauth.ValuesFile], err = natsauth.Values(filepath.Join(*out, natsauth.ConfFile), natsauth.PublicKeysSecret); err != nil {
		return err
	}
	return files.Write(*out)
}
