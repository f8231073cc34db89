// Command workorders keeps a work-order system in step with ServiceTrade jobs: it consumes
// work-order events from EVENTS (durable "workorders"), fetches each job from the
// ServiceTrade API and upserts or deletes it downstream. See -h for every setting.
package main

import (
	"flag"

	"github.com/fieldstream/fieldstream/pkg/consumerd"
	"github.com/fieldstream/fieldstream/services/workorders"
	"github.com/fieldstream/fieldstream/services/workorders/wosystem"
)

func main() {
	fs := flag.NewFlagSet("workorders", flag.ContinueOnError)
	var f consumerd.Flags
	f.Register(fs, "127.0.0.1:9203")
	var sys wosystem.Config
	fs.StringVar(&sys.BaseURL, "workorders-url", "http://127.0.0.1:9103", "base URL of the work-order system")
	fs.DurationVar(&sys.Timeout, "workorders-timeout", wosystem.DefaultTimeout, "timeout of one work-order system request")
	consumerd.Main(fs, &f, func() consumerd.Service { return workorders.Service(sys) })
}
