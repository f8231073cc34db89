package poller

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fieldstream/fieldstream/streams"
)

// CheckpointBucket is the JetStream KV bucket of the poller's checkpoints. Key
// <tenant>.<kind> (acme.job); value the newest update time, in Unix seconds, that a
// completed walk of that kind read and had acknowledged. An operator may set one by hand
// (nats kv put fieldstream_poller acme.job 1767100000) or delete it to start over from the
// initial lookback.
const CheckpointBucket = streams.CheckpointsBucket

func checkpointKey(tenant, kind string) string { return tenant + "." + kind }

type checkpoints struct{ kv jetstream.KeyValue }

// openCheckpoints returns the bucket, creating it from its definition in streams (the last
// 10 values of each key for the record) if it does not exist. An existing bucket is used as
// it is, so an operator may create it with more replicas beforehand.
func openCheckpoints(ctx context.Context, js jetstream.JetStream) (*checkpoints, error) {
	kv, err := streams.OpenBucket(ctx, js, CheckpointBucket)
	if err != nil {
		return nil, fmt.Errorf("poller: checkpoint bucket %s: %w", CheckpointBucket, err)
	}
	return &checkpoints{kv: kv}, nil
}

// get returns the checkpoint under key; ok is false when there is none.
func (c *checkpoints) get(ctx context.Context, key string) (time.Time, bool, error) {
	e, err := c.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("reading checkpoint %s: %w", key, err)
	}
	sec, err := parseCheckpoint(e.Value())
	if err != nil {
		return time.Time{}, false, fmt.Errorf("checkpoint %s: %w (fix or delete it: nats kv del %s %s)", key, err, CheckpointBucket, key)
	}
	return time.Unix(sec, 0).UTC(), true, nil
}

// advance moves the checkpoint under key to sec unless it is already there or later, and
// returns the checkpoint. It compares and sets, so two pollers of one tenant never move a
// checkpoint back.
func (c *checkpoints) advance(ctx context.Context, key string, sec int64) (time.Time, error) {
	val := []byte(strconv.FormatInt(sec, 10))
	for range 10 {
		e, err := c.kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			if _, err := c.kv.Create(ctx, key, val); errors.Is(err, jetstream.ErrKeyExists) {
				continue
			} else if err != nil {
				return time.Time{}, err
			}
			return time.Unix(sec, 0).UTC(), nil
		}
		if err != nil {
			return time.Time{}, err
		}
		if cur, err := parseCheckpoint(e.Value()); err == nil && cur >= sec {
			return time.Unix(cur, 0).UTC(), nil
		}
		if _, err := c.kv.Update(ctx, key, val, e.Revision()); errors.Is(err, jetstream.ErrKeyExists) {
			continue
		} else if err != nil {
			return time.Time{}, err
		}
		return time.Unix(sec, 0).UTC(), nil
	}
	return time.Time{}, fmt.Errorf("checkpoint %s: too much contention", key)
}

func parseCheckpoint(v []byte) (int64, error) {
	sec, err := strconv.ParseInt(strings.TrimSpace(string(v)), 10, 64)
	if err != nil || sec <= 0 {
		return 0, fmt.Errorf("value %q: want Unix seconds", v)
	}
	return sec, nil
}
