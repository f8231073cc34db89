// Command probe checks a health endpoint for a container's health check and exits 0 if it
// answers 2xx, 1 otherwise:
//
//	probe http://127.0.0.1:8222/healthz
//
// fieldstream's own binaries answer `-probe URL` themselves; this command goes into the
// images of programs that are not ours (nats-server), which are built FROM scratch and have
// no shell or curl.
package main

import (
	"fmt"
	"os"

	"github.com/fieldstream/fieldstream/pkg/probe"
)

func main() {
	url, ok := probe.URLFromArgs(os.Args[1:])
	if !ok && len(os.Args) == 2 {
		url, ok = os.Args[1], true
	}
	if !ok {
		fmt.Fprintln(os.Stderr, "usage: probe [-probe] URL   (exit 0 if URL answers 2xx within 3 s)")
		os.Exit(2)
	}
	probe.Exit(url)
}
