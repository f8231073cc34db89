package ops

import (
	"context"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fieldstream/fieldstream/streams"
)

// Setup creates or updates every stream of streams/ and the KV buckets several services
// share, with replicas applied to all when positive (buckets are otherwise only created if
// missing). It is what a deployment whose services may not create shared things runs once
// as the admin (see deploy/), and again after streams/ changes. It never deletes or purges
// an event or a dead letter; the one stream it deletes is REPLAY, of earlier versions,
// once it has moved the replays and redrives in progress there into the present design
// (see migrateLegacyReplay). It returns what it did, in order. Each service still creates
// its own durable consumers and ledgers.
func Setup(ctx context.Context, js jetstream.JetStream, replicas int) ([]string, error) {
	var done []string
	names, err := streams.Apply(ctx, js, streams.Options{Replicas: replicas})
	for _, n := range names {
		done = append(done, "stream "+n)
	}
	if err != nil {
		return done, err
	}
	buckets, err := streams.ApplyBuckets(ctx, js, replicas)
	for _, b := range buckets {
		done = append(done, "bucket "+b)
	}
	if err != nil {
		return done, err
	}
	migrated, err := migrateLegacyReplay(ctx, js)
	return append(done, migrated...), err
}
