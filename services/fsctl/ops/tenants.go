package ops

import (
	"context"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fieldstream/fieldstream/pkg/tenant"
)

// PutTenant creates or replaces the record of tenant name (validated as the gateway would
// read it) in the tenants bucket, which it opens — creating it if it does not exist. The
// gateways follow the bucket, so the change applies within moments.
func PutTenant(ctx context.Context, js jetstream.JetStream, name string, cfg tenant.Config) error {
	kv, err := tenant.OpenBucket(ctx, js)
	if err != nil {
		return err
	}
	return tenant.Put(ctx, kv, name, cfg)
}
