package ops

import (
	"context"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fieldstream/fieldstream/pkg/servicetrade"
	"github.com/fieldstream/fieldstream/pkg/streamdef"
	"github.com/fieldstream/fieldstream/pkg/tenant"
	"github.com/fieldstream/fieldstream/streams"
)

// Setup creates or updates every stream of streams/ (with replicas applied when positive)
// and creates the KV buckets several services share — tenants and OAuth2 tokens — if they do
// not exist. It is what a deployment whose services may not create shared things runs once
// as the admin (see deploy/). It never deletes or purges, and returns what it applied, in
// order. Each service still creates its own durable consumers and buckets.
func Setup(ctx context.Context, js jetstream.JetStream, replicas int) ([]string, error) {
	cfgs, err := streamdef.Load(streams.Files)
	if err != nil {
		return nil, err
	}
	var done []string
	for i := range cfgs {
		if replicas > 0 {
			cfgs[i].Replicas = replicas
		}
		done = append(done, "stream "+cfgs[i].Name)
	}
	if err := streamdef.Apply(ctx, js, cfgs); err != nil {
		return nil, err
	}
	if _, err := tenant.OpenBucket(ctx, js); err != nil {
		return nil, err
	}
	if _, err := servicetrade.OpenTokenBucket(ctx, js); err != nil {
		return nil, err
	}
	return append(done, "bucket "+tenant.Bucket, "bucket "+servicetrade.TokenBucket), nil
}
