// Command gateway receives webhooks and publishes their events to JetStream. It connects
// to the NATS server at -nats-url (or NATS_URL); see -h for every setting.
package main

import (
	"context"
	"flag"

	"github.com/fieldstream/fieldstream/pkg/daemon"
	"github.com/fieldstream/fieldstream/services/gateway"
)

func main() {
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	var s gateway.Settings
	s.RegisterFlags(fs)
	daemon.Main(daemon.Program{Name: "gateway", Flags: fs, Wire: func(setup context.Context, p *daemon.Process) error {
		s.Config.Metrics = p.Metrics
		gw, err := gateway.Open(setup, p.JetStream, s, p.Log)
		if err != nil {
			return err
		}
		p.Defer(func() { _ = gw.Close() })
		addr, err := p.Serve(s.HTTPAddr, gateway.NewHTTPServer(s.HTTPAddr, gw))
		if err != nil {
			return err
		}
		p.Log.Info().Str("http", "http://"+addr.String()).Str("nats", p.NATSURL).Msg("gateway serving")
		return nil
	}})
}
