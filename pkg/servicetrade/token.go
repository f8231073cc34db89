package servicetrade

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"

	"github.com/fieldstream/fieldstream/pkg/failure"
)

// TokenStore keeps the client's current OAuth2 token where other clients — a restarted
// process, another replica — find it. The token's Expiry and ExpiresIn (its lifetime in
// seconds) must survive the round trip; they decide when it is replaced.
//
// Implementations must be safe for concurrent use.
type TokenStore interface {
	// Load returns the stored token, or nil and no error when none is stored.
	Load(ctx context.Context) (*oauth2.Token, error)
	// Save stores tok in place of the stored one. A store that can tell may refuse to
	// replace a token saved by another writer since this store's last Load or Save, with
	// an error matching ErrTokenConflict; the client then loads and uses that token.
	Save(ctx context.Context, tok *oauth2.Token) error
}

// ErrTokenConflict is Save's error when another writer saved a token first.
var ErrTokenConflict = errors.New("servicetrade: another client saved a token first")

// NewMemoryTokenStore returns a TokenStore in this process's memory: a restart forgets the
// token. Clients given the same store share its token.
func NewMemoryTokenStore() TokenStore { return &memoryTokenStore{} }

type memoryTokenStore struct {
	mu  sync.Mutex
	tok *oauth2.Token
}

func (m *memoryTokenStore) Load(context.Context) (*oauth2.Token, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.tok == nil {
		return nil, nil
	}
	tok := *m.tok
	return &tok, nil
}

func (m *memoryTokenStore) Save(_ context.Context, tok *oauth2.Token) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	saved := *tok
	m.tok = &saved
	return nil
}

// token returns a token to send: the current one while it is fresh, else a fresher one
// from the store, else a new grant. rejected is an access token the API has refused (401);
// it is never returned again.
func (c *Client) token(ctx context.Context, rejected string) (*oauth2.Token, error) {
	if tok := c.current.Load(); c.usable(tok, rejected) {
		return tok, nil
	}
	// One caller replaces the token; the others wait here and take its result.
	select {
	case c.acquire <- struct{}{}:
	case <-ctx.Done():
		return nil, failure.Transient(fmt.Errorf("servicetrade: waiting for a token: %w", ctx.Err()), 0)
	}
	defer func() { <-c.acquire }()
	if tok := c.current.Load(); c.usable(tok, rejected) {
		return tok, nil
	}

	stored, err := c.cfg.Tokens.Load(ctx)
	if err != nil {
		c.log.Warn().Err(err).Msg("servicetrade: token store: load failed; granting a token of our own")
	}
	if c.usable(stored, rejected) {
		c.current.Store(stored)
		return stored, nil
	}

	granted, err := c.grantToken(ctx)
	if err != nil {
		// A token past its refresh point still works until it expires: better to use it
		// than to fail while the token endpoint is down.
		for _, tok := range []*oauth2.Token{c.current.Load(), stored} {
			if tok != nil && tok.AccessToken != rejected && c.unexpired(tok) {
				c.log.Warn().Err(err).Time("expiry", tok.Expiry).Msg("servicetrade: token grant failed; using the current token until it expires")
				c.current.Store(tok)
				return tok, nil
			}
		}
		return nil, err
	}
	tok := c.save(ctx, granted, rejected)
	c.current.Store(tok)
	return tok, nil
}

// save stores granted and returns the token to use: granted, or the token another client
// saved first if that one is usable, so that replicas converge on one token.
func (c *Client) save(ctx context.Context, granted *oauth2.Token, rejected string) *oauth2.Token {
	err := c.cfg.Tokens.Save(ctx, granted)
	if errors.Is(err, ErrTokenConflict) {
		other, lerr := c.cfg.Tokens.Load(ctx)
		if lerr == nil && c.usable(other, rejected) {
			c.log.Debug().Msg("servicetrade: another client saved a token first; using that one")
			return other
		}
		err = c.cfg.Tokens.Save(ctx, granted) // the Load brought the store up to date
	}
	if err != nil {
		c.log.Warn().Err(err).Msg("servicetrade: token store: save failed; other clients will grant their own")
	}
	return granted
}

// usable reports whether tok can be sent without replacing it first.
func (c *Client) usable(tok *oauth2.Token, rejected string) bool {
	return tok != nil && tok.AccessToken != "" && tok.AccessToken != rejected && c.now().Before(c.refreshAt(tok))
}

// unexpired reports whether the API should still accept tok.
func (c *Client) unexpired(tok *oauth2.Token) bool {
	return tok.AccessToken != "" && (tok.Expiry.IsZero() || c.now().Before(tok.Expiry))
}

// refreshAt is when tok is due for replacement: RefreshBefore before its expiry, or half
// its lifetime before, whichever is later. A token with no expiry is replaced only after a
// 401 (refreshAt is far away).
func (c *Client) refreshAt(tok *oauth2.Token) time.Time {
	if tok.Expiry.IsZero() {
		return time.Unix(1<<62, 0)
	}
	margin := c.cfg.RefreshBefore
	if tok.ExpiresIn > 0 {
		margin = min(margin, time.Duration(tok.ExpiresIn)*time.Second/2)
	}
	return tok.Expiry.Add(-margin)
}

func (c *Client) now() time.Time { return c.cfg.Now() }

// grantToken asks the token endpoint for a new token (client_credentials) and sets its
// Expiry and ExpiresIn by this client's clock.
func (c *Client) grantToken(ctx context.Context) (*oauth2.Token, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	ctx = context.WithValue(ctx, oauth2.HTTPClient, c.cfg.HTTPClient)
	requested := c.now()
	tok, err := c.grant.Token(ctx)
	if c.cfg.OnGrant != nil {
		c.cfg.OnGrant(err)
	}
	if err != nil {
		return nil, c.grantError(err)
	}
	lifetime := lifetimeOf(tok, requested)
	out := &oauth2.Token{AccessToken: tok.AccessToken, TokenType: tok.TokenType, RefreshToken: tok.RefreshToken}
	if lifetime > 0 {
		// From the time we asked, so our idea of the expiry is never later than the
		// server's, however long the grant took and however the clocks differ.
		out.Expiry = requested.Add(time.Duration(lifetime) * time.Second)
		out.ExpiresIn = lifetime
	}
	c.log.Debug().Int64("expires_in_s", lifetime).Msg("servicetrade: token granted")
	return out, nil
}

// lifetimeOf returns a token's lifetime in seconds: expires_in, else the JWT's exp less its
// iat (or less the time we asked, if it has no iat), else 0 for unknown.
func lifetimeOf(tok *oauth2.Token, requested time.Time) int64 {
	if tok.ExpiresIn > 0 {
		return tok.ExpiresIn
	}
	exp, iat, ok := jwtTimes(tok.AccessToken)
	switch {
	case !ok:
		return 0
	case iat > 0 && exp > iat:
		return exp - iat
	case exp > requested.Unix():
		return exp - requested.Unix()
	}
	return 0
}

// jwtTimes reads exp and iat from a JWT's payload without verifying it: the client only
// needs to know when the API will stop accepting it, and the API does the verifying.
func jwtTimes(token string) (exp, iat int64, ok bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return 0, 0, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return 0, 0, false
	}
	var claims struct {
		Exp json.Number `json:"exp"`
		Iat json.Number `json:"iat"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		return 0, 0, false
	}
	exp, err = claims.Exp.Int64()
	if err != nil {
		return 0, 0, false
	}
	iat, _ = claims.Iat.Int64()
	return exp, iat, true
}

// grantError classifies a failed grant: the token endpoint's answer goes through
// failure.FromHTTP (a 401 invalid_client is permanent: the credentials are wrong; a 429
// or 5xx transient); no answer at all is transient.
func (c *Client) grantError(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.Response != nil {
		detail := re.ErrorCode
		if re.ErrorDescription != "" {
			detail += ": " + re.ErrorDescription
		}
		if id := re.Response.Header.Get(requestIDHeader); id != "" {
			detail += " (x-request-id " + id + ")"
		}
		return fmt.Errorf("servicetrade: token grant: %w",
			failure.FromHTTP(http.MethodPost, c.tokenURL, re.Response.StatusCode, re.Response.Header, strings.TrimSpace(detail)))
	}
	return failure.Transient(fmt.Errorf("servicetrade: token grant: %w", err), 0)
}
