package payroll

import (
	"context"
	"errors"
	"strconv"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fieldstream/fieldstream/streams"
)

// EmployeesBucket maps ServiceTrade user ids (keys) to payroll employee codes (values).
const EmployeesBucket = streams.EmployeesBucket

// KVEmployees is the employee mapping in a JetStream KV bucket; operators maintain it with
// `nats kv put fieldstream_payroll_employees <userId> <eecode>`.
type KVEmployees struct{ kv jetstream.KeyValue }

// OpenEmployees opens the employee mapping, creating its bucket from its definition in
// streams if it does not exist (an existing one is used as it is).
func OpenEmployees(ctx context.Context, js jetstream.JetStream) (*KVEmployees, error) {
	kv, err := streams.OpenBucket(ctx, js, EmployeesBucket)
	if err != nil {
		return nil, err
	}
	return &KVEmployees{kv: kv}, nil
}

// EECode implements Employees.
func (e *KVEmployees) EECode(ctx context.Context, userID int64) (string, bool, error) {
	v, err := e.kv.Get(ctx, strconv.FormatInt(userID, 10))
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return "", false, nil
	case err != nil:
		return "", false, err
	}
	return string(v.Value()), true, nil
}

// Put maps userID to code.
func (e *KVEmployees) Put(ctx context.Context, userID int64, code string) error {
	_, err := e.kv.Put(ctx, strconv.FormatInt(userID, 10), []byte(code))
	return err
}

// Codes returns every mapped employee code.
func (e *KVEmployees) Codes(ctx context.Context) ([]string, error) {
	keys, err := e.kv.ListKeys(ctx)
	if err != nil {
		return nil, err
	}
	var codes []string
	for k := range keys.Keys() {
		v, err := e.kv.Get(ctx, k)
		if err == nil {
			codes = append(codes, string(v.Value()))
		}
	}
	return codes, nil
}
