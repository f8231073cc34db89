package servicetrade

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/fieldstream/fieldstream/services/simulator/fault"
)

// API defaults.
const (
	DefaultTokenLifetime   = time.Hour // ServiceTrade does not document its own; clients must read expires_in
	DefaultAPIPageSize     = 100
	DefaultAPIMaxPageSize  = 500
	apiSigningKeyBytes     = 32
	apiMaxFormBytes        = 64 << 10
	apiRequestIDHeader     = "x-request-id"
	apiTokenIssuer         = "servicetrade-simulator"
	apiAdminRevokePath     = "/admin/tokens/revoke"
	apiAdminStatsPath      = "/admin/api-stats"
	apiWWWAuthenticateHint = `Bearer realm="servicetrade", error="invalid_token"`
)

// APIConfig configures NewAPI. ClientID and ClientSecret are required; every zero field
// takes the default in its comment.
type APIConfig struct {
	// ClientID and ClientSecret are the one client the token endpoint accepts, as form
	// fields or HTTP Basic.
	ClientID, ClientSecret string
	// TokenLifetime is how long an access token is valid: its expires_in and the JWT's exp
	// minus iat. Whole seconds, at least one. Default 1h (DefaultTokenLifetime).
	TokenLifetime time.Duration
	// SigningKey signs access tokens (JWT, HS256). Default: 32 random bytes.
	SigningKey []byte
	// PageSize is a list's limit when the request names none. Default 100.
	PageSize int
	// MaxPageSize caps limit; larger limits are cut to it. Default 500.
	MaxPageSize int
	// Now is the clock that issues and checks tokens, so tests can expire tokens without
	// sleeping. Default time.Now. Entity timestamps come from the Account, not from Now.
	Now func() time.Time
}

// Validate reports a setting that NewAPI would reject.
func (c APIConfig) Validate() error {
	var errs []error
	if c.ClientID == "" || c.ClientSecret == "" {
		errs = append(errs, errors.New("ClientID and ClientSecret are required"))
	}
	if c.TokenLifetime < 0 || (c.TokenLifetime > 0 && c.TokenLifetime%time.Second != 0) {
		errs = append(errs, fmt.Errorf("TokenLifetime %s: want whole seconds, at least 1s", c.TokenLifetime))
	}
	if c.PageSize < 0 || c.MaxPageSize < 0 {
		errs = append(errs, errors.New("PageSize and MaxPageSize must not be negative"))
	}
	if c.PageSize > 0 && c.MaxPageSize > 0 && c.PageSize > c.MaxPageSize {
		errs = append(errs, fmt.Errorf("PageSize %d: above MaxPageSize %d", c.PageSize, c.MaxPageSize))
	}
	return errors.Join(errs...)
}

func (c APIConfig) withDefaults() APIConfig {
	setDefault(&c.TokenLifetime, DefaultTokenLifetime)
	setDefault(&c.PageSize, DefaultAPIPageSize)
	setDefault(&c.MaxPageSize, max(DefaultAPIMaxPageSize, c.PageSize))
	if len(c.SigningKey) == 0 {
		c.SigningKey = make([]byte, apiSigningKeyBytes)
		rand.Read(c.SigningKey) // never fails (crypto/rand, Go 1.24+)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// APIStats counts what the API did, so tests can assert how clients use tokens.
type APIStats struct {
	// TokenGrants counts client_credentials grants that issued a token.
	TokenGrants int64 `json:"token_grants"`
	// TokenRefreshes counts refresh_token grants that issued a token.
	TokenRefreshes int64 `json:"token_refreshes"`
	// TokenRejections counts token requests refused: wrong client, bad grant.
	TokenRejections int64 `json:"token_rejections"`
	// Unauthorized counts resource requests answered 401.
	Unauthorized int64 `json:"unauthorized"`
	// Requests counts resource requests that carried a valid token, whatever their answer.
	Requests int64 `json:"requests"`
}

// API is a simulated ServiceTrade REST API serving one Account: the entities its webhook
// items refer to can be fetched, as a consumer enriching a thin webhook would. It is an
// http.Handler for the whole host and is safe for concurrent use.
//
//	POST /api/oauth2/token      client_credentials or refresh_token grant (form-encoded)
//	POST /api/oauth2/revoke     revoke one access or refresh token (RFC 7009)
//	GET  /api/{type}/{id}       job, asset, location, clock, appointment, deficiency, company
//	GET  /api/{type}            the same types as pages: page, limit, updatedAfter (+ filters)
//	POST /admin/tokens/revoke   revoke every token (RevokeAllTokens)
//	GET  /admin/api-stats       Stats as JSON
//	PUT  /admin/faults          fault.Injector's admin endpoints: latency, errors, outage, 429
//
// Resource answers use ServiceTrade's envelope {"messages":{"success":[],"error":[]},
// "data":…}; errors name the problem in messages.error. Every answer carries an
// x-request-id header. A missing, unknown, expired or revoked bearer token is a 401; an
// unknown or deleted entity is a 404 (never 410, as ServiceTrade).
type API struct {
	acct    *Account
	cfg     APIConfig
	faults  *fault.Injector
	handler http.Handler

	mu      sync.Mutex
	access  map[string]int64  // jti of each live access token → its exp (Unix seconds)
	refresh map[string]string // live refresh token → the client it was issued to
	stats   APIStats
}

// NewAPI returns an API serving acct's entities. It fails if acct is nil or cfg.Validate
// does.
func NewAPI(acct *Account, cfg APIConfig) (*API, error) {
	if acct == nil {
		return nil, errors.New("servicetrade: api: nil account")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("servicetrade: api config: %w", err)
	}
	a := &API{
		acct:    acct,
		cfg:     cfg.withDefaults(),
		faults:  &fault.Injector{},
		access:  map[string]int64{},
		refresh: map[string]string{},
	}
	a.handler = withAPIRequestID(a.faults.Wrap(a.routes()))
	return a, nil
}

func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.handler.ServeHTTP(w, r) }

// Faults returns the injector every request except /admin/ passes through, token requests
// included. Set faults on it directly or through PUT /admin/faults.
func (a *API) Faults() *fault.Injector { return a.faults }

// Stats returns the counts so far.
func (a *API) Stats() APIStats {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.stats
}

func (a *API) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/oauth2/token", a.serveToken)
	mux.HandleFunc("POST /api/oauth2/revoke", a.serveRevoke)
	a.routeResources(mux)
	mux.Handle("/api/", a.authorized(func(w http.ResponseWriter, r *http.Request) {
		writeAPIError(w, http.StatusNotFound, "no such endpoint: "+r.Method+" "+r.URL.Path, nil)
	}))

	mux.HandleFunc("POST "+apiAdminRevokePath, func(w http.ResponseWriter, _ *http.Request) {
		a.RevokeAllTokens()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET "+apiAdminStatsPath, func(w http.ResponseWriter, _ *http.Request) {
		writeAPIJSON(w, http.StatusOK, a.Stats())
	})
	mux.Handle(fault.AdminPrefix, a.faults.AdminHandler())
	return mux
}

// withAPIRequestID gives every answer an x-request-id, injected faults included, as
// ServiceTrade does; clients quote it when they report a problem.
func withAPIRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(apiRequestIDHeader, newUUID())
		next.ServeHTTP(w, r)
	})
}

// apiEnvelope is ServiceTrade's answer: messages for people, data for programs.
type apiEnvelope struct {
	Messages apiMessages `json:"messages"`
	Data     any         `json:"data"`
}

type apiMessages struct {
	Success []string `json:"success"`
	Error   []string `json:"error"`
}

func writeAPIData(w http.ResponseWriter, data any) {
	writeAPIJSON(w, http.StatusOK, apiEnvelope{
		Messages: apiMessages{Success: []string{}, Error: []string{}},
		Data:     data,
	})
}

// writeAPIError answers status with msg in messages.error and, for a 400, the
// offending fields in data.errors (field → problem). The shape of that map is ours: the
// vendor documents only that there is one.
func writeAPIError(w http.ResponseWriter, status int, msg string, fields map[string]string) {
	data := map[string]any{}
	if len(fields) > 0 {
		data["errors"] = fields
	}
	writeAPIJSON(w, status, apiEnvelope{
		Messages: apiMessages{Success: []string{}, Error: []string{msg}},
		Data:     data,
	})
}

func writeAPIJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
