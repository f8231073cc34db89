package streams

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// Names of the KV buckets several services or operators share. (Each consumer's ledger is
// its own, named by pkg/consumer.)
const (
	// TenantsBucket: key = tenant name, value = the tenant's record (pkg/tenant).
	TenantsBucket = "fieldstream_tenants"
	// TokensBucket: key = OAuth2 client, value = its current token as JSON (pkg/servicetrade).
	// The values are bearer credentials: limit who may read the bucket.
	TokensBucket = "fieldstream_oauth_tokens"
	// EmployeesBucket: key = ServiceTrade user id, value = payroll employee code.
	EmployeesBucket = "fieldstream_payroll_employees"
	// CheckpointsBucket: key = <tenant>.<kind>, value = the poller's checkpoint in Unix
	// seconds.
	CheckpointsBucket = "fieldstream_poller"
)

// Buckets returns the definitions of the shared buckets, at one replica (ApplyBuckets sets
// more on a cluster).
func Buckets() []jetstream.KeyValueConfig {
	return []jetstream.KeyValueConfig{
		{Bucket: TenantsBucket, Description: "fieldstream tenants and their webhook credentials (key: tenant name)", History: 5, Storage: jetstream.FileStorage},
		{Bucket: TokensBucket, Description: "fieldstream OAuth2 tokens of outside APIs (key: client), shared by replicas", History: 1, Storage: jetstream.FileStorage},
		{Bucket: EmployeesBucket, Description: "payroll: ServiceTrade user id → payroll employee code (eecode)", History: 1, Storage: jetstream.FileStorage},
		{Bucket: CheckpointsBucket, Description: "fieldstream poller checkpoints: key <tenant>.<kind>, value Unix seconds of the newest update published", History: 10, Storage: jetstream.FileStorage},
	}
}

// Bucket returns the definition of the shared bucket named name.
func Bucket(name string) (jetstream.KeyValueConfig, error) {
	for _, b := range Buckets() {
		if b.Bucket == name {
			return b, nil
		}
	}
	return jetstream.KeyValueConfig{}, fmt.Errorf("streams: no bucket %s", name)
}

// OpenBucket returns the shared bucket named name as it is, creating it from its
// definition only if it does not exist (also when another process creates it at the same
// moment). It never changes an existing bucket, so binding needs no more than read access to
// the bucket's stream info: a service whose NATS user may not create or update a shared
// bucket still starts once an operator created it (with more replicas, say).
func OpenBucket(ctx context.Context, js jetstream.JetStream, name string) (jetstream.KeyValue, error) {
	cfg, err := Bucket(name)
	if err != nil {
		return nil, err
	}
	kv, err := js.KeyValue(ctx, name)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateKeyValue(ctx, cfg)
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = js.KeyValue(ctx, name)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", name, err)
	}
	return kv, nil
}

// ApplyBuckets creates or updates every shared bucket to its definition with replicas
// (when positive), or, with replicas 0, creates the missing ones and leaves existing ones as
// they are. It returns their names in order.
func ApplyBuckets(ctx context.Context, js jetstream.JetStream, replicas int) ([]string, error) {
	var names []string
	for _, b := range Buckets() {
		var err error
		if replicas > 0 {
			b.Replicas = replicas
			_, err = js.CreateOrUpdateKeyValue(ctx, b)
		} else {
			_, err = OpenBucket(ctx, js, b.Bucket)
		}
		if err != nil {
			return names, fmt.Errorf("bucket %s: %w", b.Bucket, err)
		}
		names = append(names, b.Bucket)
	}
	return names, nil
}
