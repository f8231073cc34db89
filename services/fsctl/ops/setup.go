package ops

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fieldstream/fieldstream/pkg/servicetrade"
	"github.com/fieldstream/fieldstream/pkg/streamdef"
	"github.com/fieldstream/fieldstream/pkg/tenant"
	"github.com/fieldstream/fieldstream/streams"
)

// Setup creates or updates every stream of streams/ and the KV buckets several services
// share — tenants and OAuth2 tokens —, with replicas applied to all when positive (buckets
// are otherwise only created if missing). It is what a deployment whose services may not create shared things runs once
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
	for _, b := range []jetstream.KeyValueConfig{tenant.BucketConfig(), servicetrade.TokenBucketConfig()} {
		var err error
		if replicas > 0 {
			b.Replicas = replicas
			_, err = js.CreateOrUpdateKeyValue(ctx, b)
		} else {
			_, err = streamdef.OpenKeyValue(ctx, js, b)
		}
		if err != nil {
			return nil, fmt.Errorf("bucket %s: %w", b.Bucket, err)
		}
	}
	return append(done, "bucket "+tenant.Bucket, "bucket "+servicetrade.TokenBucket), nil
}
