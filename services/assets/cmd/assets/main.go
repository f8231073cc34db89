// Command assets keeps an asset registry in step with ServiceTrade's assets and locations:
// it consumes asset and location events from EVENTS (durable "assets") in batches, fetches
// each entity from the ServiceTrade API and writes one grouped call per service location.
// See -h for every setting.
package main

import (
	"flag"

	"github.com/fieldstream/fieldstream/pkg/consumerd"
	"github.com/fieldstream/fieldstream/services/assets"
	"github.com/fieldstream/fieldstream/services/assets/assetsys"
)

func main() {
	fs := flag.NewFlagSet("assets", flag.ContinueOnError)
	var f consumerd.Flags
	f.Register(fs, "127.0.0.1:9202")
	var reg assetsys.Config
	fs.StringVar(&reg.BaseURL, "registry-url", "http://127.0.0.1:9102", "base URL of the asset registry")
	fs.DurationVar(&reg.Timeout, "registry-timeout", assetsys.DefaultTimeout, "timeout of one asset registry request")
	consumerd.Main(fs, &f, func() consumerd.Service { return assets.Service(reg) })
}
