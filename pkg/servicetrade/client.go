// Package servicetrade is the ServiceTrade REST API client fieldstream's consumers use to
// fetch what a thin webhook item only refers to: the job, asset, location, clock event or
// appointment behind an id, and every entity changed since a time (the polling backstop for
// lost webhooks).
//
// The client gets OAuth2 client-credentials tokens, shares them through a TokenStore (a
// JetStream KV bucket, so restarts and replicas reuse one token), replaces them ahead of
// expiry, and retries a request once with a new token when the API answers 401. It does
// not retry anything else: every error is classified with package failure (404, 400 and a
// second 401 permanent; 429, 5xx, network errors and timeouts transient, with the
// Retry-After the API sent), and the consumer pipeline decides when to try again.
package servicetrade

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/fieldstream/fieldstream/pkg/failure"
	"github.com/fieldstream/fieldstream/pkg/tracing"
)

// Defaults of Config.
const (
	DefaultBaseURL       = "https://api.servicetrade.com/api"
	DefaultTimeout       = 10 * time.Second
	DefaultRefreshBefore = 5 * time.Minute // as ServiceTrade's own SDKs
)

const (
	userAgent       = "fieldstream-servicetrade-client"
	maxAnswerBytes  = 32 << 20 // a page of 500 entities is well under 1 MiB
	maxErrorDetail  = 300      // bytes of an error answer quoted in the error
	requestIDHeader = "x-request-id"
	tokenPath       = "/oauth2/token"
)

// Config configures New. ClientID and ClientSecret are required; every zero field takes
// the default in its comment.
type Config struct {
	// BaseURL is the API up to and including /api. Default DefaultBaseURL. The token
	// endpoint is BaseURL/oauth2/token.
	BaseURL string
	// ClientID and ClientSecret are the OAuth2 client credentials.
	ClientID, ClientSecret string
	// HTTPClient sends every request, token grants included. Default: a client on
	// http.DefaultTransport. Its own Timeout, if any, applies on top of Timeout.
	HTTPClient *http.Client
	// Timeout bounds each HTTP exchange (one token grant, one GET, body included); a
	// list walk makes one per page. A shorter deadline on the caller's context wins.
	// Default 10s.
	Timeout time.Duration
	// RefreshBefore is how long before its expiry a token is replaced, but a token is
	// always used for at least half its lifetime: it is replaced at whichever comes
	// later. Default 5m. See Client.
	RefreshBefore time.Duration
	// Tokens keeps the current token. Give replicas of a service one KV-backed store
	// (NewKVTokenStore) so that they share a token. Default: NewMemoryTokenStore().
	Tokens TokenStore
	// Logger receives token grants and retries (debug) and token store failures (warn).
	// The zero value logs nothing. Secrets and tokens are never logged.
	Logger zerolog.Logger
	// OnGrant, if set, is called after every token grant with its error (nil: granted), so
	// that refresh failures can be counted (GrantCounter) and alerted on.
	OnGrant func(err error)
	// Now is the clock that ages tokens. Default time.Now.
	Now func() time.Time
}

// Validate reports a setting that New would reject.
func (c Config) Validate() error {
	var errs []error
	if c.BaseURL != "" {
		if u, err := url.Parse(c.BaseURL); err != nil {
			errs = append(errs, fmt.Errorf("BaseURL: %w", err))
		} else if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("BaseURL %q: want an absolute http or https URL", c.BaseURL))
		}
	}
	if c.ClientID == "" || c.ClientSecret == "" {
		errs = append(errs, errors.New("ClientID and ClientSecret are required"))
	}
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("Timeout %s: must not be negative", c.Timeout))
	}
	if c.RefreshBefore < 0 {
		errs = append(errs, fmt.Errorf("RefreshBefore %s: must not be negative", c.RefreshBefore))
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	if c.BaseURL == "" {
		c.BaseURL = DefaultBaseURL
	}
	c.BaseURL = strings.TrimRight(c.BaseURL, "/")
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{}
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.RefreshBefore == 0 {
		c.RefreshBefore = DefaultRefreshBefore
	}
	if c.Tokens == nil {
		c.Tokens = NewMemoryTokenStore()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Client reads entities from ServiceTrade's REST API. It is safe for concurrent use, and
// meant to be shared: its callers share one token.
//
// Tokens: a token is used until RefreshBefore (5 min) before its expiry, or until half its
// lifetime has passed if that is later (a 2-minute token is used for one minute, not
// never). Its lifetime is the grant's expires_in, else the JWT's exp; it is never assumed.
// When a token is due, one caller at a time looks in the TokenStore for a newer one and
// grants a new one only if there is none; the others wait for it. If the grant fails
// while the old token has not yet expired, the old token is used. When the API answers 401,
// the client drops that token, gets another, and retries the request once.
type Client struct {
	cfg   Config
	grant clientcredentials.Config
	log   zerolog.Logger

	current  atomic.Pointer[oauth2.Token] // the token in use; nil before the first
	acquire  chan struct{}                // held by the one caller replacing the token
	tokenURL string
}

// New returns a Client per cfg. It makes no request: the first token is granted by the
// first call that needs one. It fails only if cfg.Validate does.
func New(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("servicetrade: config: %w", err)
	}
	cfg = cfg.withDefaults()
	tokenURL := cfg.BaseURL + tokenPath
	return &Client{
		cfg: cfg,
		grant: clientcredentials.Config{
			ClientID:     cfg.ClientID,
			ClientSecret: cfg.ClientSecret,
			TokenURL:     tokenURL,
			AuthStyle:    oauth2.AuthStyleInParams,
		},
		log:      cfg.Logger,
		acquire:  make(chan struct{}, 1),
		tokenURL: tokenURL,
	}, nil
}

// envelope is ServiceTrade's answer; only data matters to a program.
type envelope[T any] struct {
	Messages struct {
		Error []string `json:"error"`
	} `json:"messages"`
	Data *T `json:"data"`
}

// getData GETs BaseURL+path?query and returns the answer's data.
func getData[T any](ctx context.Context, c *Client, path string, query url.Values) (T, error) {
	var zero T
	u := c.cfg.BaseURL + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	body, err := c.fetch(ctx, u)
	if err != nil {
		return zero, err
	}
	var env envelope[T]
	if err := json.Unmarshal(body, &env); err != nil {
		// The whole answer arrived and is not what ServiceTrade sends: asking again
		// would get the same.
		return zero, failure.Permanent(fmt.Errorf("servicetrade: GET %s: decoding the answer: %w", u, err))
	}
	if env.Data == nil {
		return zero, failure.Permanent(fmt.Errorf("servicetrade: GET %s: answer has no data", u))
	}
	return *env.Data, nil
}

// fetch GETs u with a bearer token and returns the body of a 2xx answer. On a 401 it
// retries once with another token.
func (c *Client) fetch(ctx context.Context, u string) ([]byte, error) {
	rejected := "" // the access token the API answered 401 to
	for {
		tok, err := c.token(ctx, rejected)
		if err != nil {
			return nil, err
		}
		status, header, body, err := c.send(ctx, u, tok)
		if err != nil {
			return nil, failure.Transient(fmt.Errorf("servicetrade: GET %s: %w", u, err), 0)
		}
		if status == http.StatusUnauthorized && rejected == "" {
			c.log.Debug().Str("url", u).Str("request_id", header.Get(requestIDHeader)).
				Msg("servicetrade: 401, retrying once with another token")
			rejected = tok.AccessToken
			continue
		}
		if status < 200 || status > 299 {
			return nil, failure.FromHTTP(http.MethodGet, u, status, header, errorDetail(header, body))
		}
		return body, nil
	}
}

// send makes one GET within Timeout and reads the whole answer.
func (c *Client) send(ctx context.Context, u string, tok *oauth2.Token) (int, http.Header, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)
	tok.SetAuthHeader(req)
	req, end := tracing.StartHTTP(req, "servicetrade")
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		end(0, err)
		return 0, nil, nil, err
	}
	end(resp.StatusCode, nil)
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes+1))
	if err != nil {
		return 0, nil, nil, fmt.Errorf("reading the answer: %w", err)
	}
	if len(body) > maxAnswerBytes {
		return 0, nil, nil, fmt.Errorf("answer larger than %d bytes", maxAnswerBytes)
	}
	return resp.StatusCode, resp.Header, body, nil
}

// errorDetail is what an operator needs from an error answer: ServiceTrade's
// messages.error if it sent any, else the start of the body, and the request id.
func errorDetail(header http.Header, body []byte) string {
	var env envelope[json.RawMessage]
	detail := strings.TrimSpace(string(body))
	if json.Unmarshal(body, &env) == nil && len(env.Messages.Error) > 0 {
		detail = strings.Join(env.Messages.Error, "; ")
	}
	if len(detail) > maxErrorDetail {
		detail = strings.ToValidUTF8(detail[:maxErrorDetail], "") + "…"
	}
	if id := header.Get(requestIDHeader); id != "" {
		detail += " (x-request-id " + id + ")"
	}
	return strings.TrimSpace(detail)
}

// RegisterFlags binds the connection settings of c to fs under the prefix "servicetrade-".
func (c *Config) RegisterFlags(fs *flag.FlagSet, defaultURL string) {
	fs.StringVar(&c.BaseURL, "servicetrade-url", defaultURL, "ServiceTrade API base URL, up to and including /api")
	fs.StringVar(&c.ClientID, "servicetrade-client-id", "fieldstream", "ServiceTrade OAuth2 client id")
	fs.StringVar(&c.ClientSecret, "servicetrade-client-secret", "", "ServiceTrade OAuth2 client secret (prefer the environment variable)")
	fs.DurationVar(&c.Timeout, "servicetrade-timeout", DefaultTimeout, "timeout of one ServiceTrade request")
	fs.DurationVar(&c.RefreshBefore, "servicetrade-refresh-before", DefaultRefreshBefore, "refresh the OAuth2 token this long before it expires")
}
