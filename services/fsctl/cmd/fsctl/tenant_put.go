package main

import (
	"context"
	"fmt"

	"github.com/fieldstream/fieldstream/pkg/tenant"
	"github.com/fieldstream/fieldstream/services/fsctl/ops"
)

type tenantPutCmd struct {
	Name              string   `arg:"" help:"tenant name: letters, digits, '-' and '_'"`
	ServiceTradeToken string   `name:"servicetrade-token" help:"secret path segment of the ServiceTrade hook URL (/hooks/<tenant>/servicetrade/<token>); empty: no ServiceTrade endpoint"`
	StandardSecret    []string `name:"standard-secret" help:"Standard Webhooks secret (whsec_…); repeat during key rotation; none: no Standard Webhooks endpoint"`
	Rate              float64  `help:"events per second the tenant may send (0: the gateway's default)"`
	Burst             int      `help:"events the tenant may send at once (0: the gateway's default)"`
}

func (c tenantPutCmd) Run(ctx context.Context, e *env) error {
	cfg := tenant.Config{ServiceTradeToken: c.ServiceTradeToken, StandardSecrets: c.StandardSecret, RatePerSecond: c.Rate, Burst: c.Burst}
	if err := ops.PutTenant(ctx, e.js, c.Name, cfg); err != nil {
		return err
	}
	if e.json {
		return e.printJSON(map[string]any{"tenant": c.Name, "servicetrade": c.ServiceTradeToken != "", "standard_secrets": len(c.StandardSecret)})
	}
	fmt.Fprintf(e.stdout, "tenant %s stored (ServiceTrade endpoint %v, %d Standard Webhooks secrets)\n", c.Name, c.ServiceTradeToken != "", len(c.StandardSecret))
	return nil
}
