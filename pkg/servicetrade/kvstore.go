package servicetrade

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/oauth2"

	"github.com/fieldstream/fieldstream/streams"
)

// TokenBucket is the JetStream KV bucket of OAuth2 tokens. Each key holds one client's
// current token as JSON: access_token, token_type, refresh_token, expiry (RFC 3339) and
// expires_in (its lifetime in seconds). The values are bearer credentials: limit who may
// read the bucket.
const TokenBucket = streams.TokensBucket

// OpenTokenBucket returns the TokenBucket, creating it from its definition in streams if it
// does not exist. An existing bucket is used as it is, so an operator may create it with more
// replicas beforehand.
func OpenTokenBucket(ctx context.Context, js jetstream.JetStream) (jetstream.KeyValue, error) {
	kv, err := streams.OpenBucket(ctx, js, TokenBucket)
	if err != nil {
		return nil, fmt.Errorf("servicetrade: token bucket: %w", err)
	}
	return kv, nil
}

// NewKVTokenStore returns a TokenStore keeping the token under key in kv (see
// OpenTokenBucket). Every client that uses the same credentials should use the same key —
// the tenant's name, say — so that they share one token; key must be a valid KV key
// (letters, digits, and -/_=.), or Load and Save fail.
//
// Save is a compare-and-set against the revision this store last loaded or saved: when
// another replica saved a token in between, Save fails with ErrTokenConflict and leaves
// that token in place. The store is safe for concurrent use.
func NewKVTokenStore(kv jetstream.KeyValue, key string) TokenStore {
	return &kvTokenStore{kv: kv, key: key}
}

type kvTokenStore struct {
	kv  jetstream.KeyValue
	key string

	mu       sync.Mutex
	revision uint64 // of the entry last loaded or saved; 0: none seen
}

func (s *kvTokenStore) Load(ctx context.Context) (*oauth2.Token, error) {
	entry, err := s.kv.Get(ctx, s.key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		s.setRevision(0)
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("servicetrade: token store %s: %w", s.key, err)
	}
	s.setRevision(entry.Revision())
	var tok oauth2.Token
	if err := json.Unmarshal(entry.Value(), &tok); err != nil {
		// The next Save replaces it: the revision is the unreadable entry's.
		return nil, fmt.Errorf("servicetrade: token store %s: unreadable token: %w", s.key, err)
	}
	return &tok, nil
}

func (s *kvTokenStore) Save(ctx context.Context, tok *oauth2.Token) error {
	value, err := json.Marshal(tok)
	if err != nil {
		return fmt.Errorf("servicetrade: token store %s: %w", s.key, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var revision uint64
	if s.revision == 0 {
		revision, err = s.kv.Create(ctx, s.key, value)
	} else {
		revision, err = s.kv.Update(ctx, s.key, value, s.revision)
	}
	switch {
	case errors.Is(err, jetstream.ErrKeyExists), errors.Is(err, jetstream.ErrKeyRevisionMismatch):
		return fmt.Errorf("servicetrade: token store %s: %w", s.key, ErrTokenConflict)
	case err != nil:
		return fmt.Errorf("servicetrade: token store %s: %w", s.key, err)
	}
	s.revision = revision
	return nil
}

func (s *kvTokenStore) setRevision(r uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.revision = r
}

// NewShared returns a client whose token lives in the token bucket (created if needed)
// under "servicetrade-<client id>", so that every process using the same credentials —
// consumer replicas, the poller, the reconciliation command — shares one token.
func NewShared(ctx context.Context, js jetstream.JetStream, cfg Config) (*Client, error) {
	bucket, err := OpenTokenBucket(ctx, js)
	if err != nil {
		return nil, err
	}
	cfg.Tokens = NewKVTokenStore(bucket, "servicetrade-"+cfg.ClientID)
	return New(cfg)
}
