package servicetrade_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fieldstream/fieldstream/services/simulator/fault"
	"github.com/fieldstream/fieldstream/services/simulator/servicetrade"
)

const (
	apiTestClientID     = "fieldstream-test"
	apiTestClientSecret = "s3cret/with+odd&chars"
)

var apiT0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// apiClock is a settable clock for the API's token checks.
type apiClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *apiClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *apiClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type apiFixture struct {
	t     testing.TB
	acct  *servicetrade.Account
	api   *servicetrade.API
	srv   *httptest.Server
	clock *apiClock
}

// newAPIFixture serves a fresh account (Seed 1, Start apiT0 unless set) with a two-minute
// token lifetime and a clock that stands still at apiT0 until advanced.
func newAPIFixture(t testing.TB, acctCfg servicetrade.AccountConfig) *apiFixture {
	t.Helper()
	if acctCfg.Seed == 0 {
		acctCfg.Seed = 1
	}
	if acctCfg.Start.IsZero() {
		acctCfg.Start = apiT0
	}
	acct, err := servicetrade.NewAccount(acctCfg)
	if err != nil {
		t.Fatal(err)
	}
	clock := &apiClock{now: apiT0}
	api, err := servicetrade.NewAPI(acct, servicetrade.APIConfig{
		ClientID:      apiTestClientID,
		ClientSecret:  apiTestClientSecret,
		TokenLifetime: 2 * time.Minute,
		Now:           clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	return &apiFixture{t: t, acct: acct, api: api, srv: srv, clock: clock}
}

type apiTokenReply struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
	Error        string `json:"error"`
}

// postForm POSTs form to path, with HTTP Basic credentials if basic is set.
func (f *apiFixture) postForm(path string, form url.Values, basic bool) (*http.Response, []byte) {
	f.t.Helper()
	req, err := http.NewRequest(http.MethodPost, f.srv.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		f.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basic {
		req.SetBasicAuth(url.QueryEscape(apiTestClientID), url.QueryEscape(apiTestClientSecret))
	}
	return f.do(req)
}

func (f *apiFixture) do(req *http.Request) (*http.Response, []byte) {
	f.t.Helper()
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		f.t.Fatal(err)
	}
	return resp, body
}

func clientCredentials() url.Values {
	return url.Values{"grant_type": {"client_credentials"}, "client_id": {apiTestClientID}, "client_secret": {apiTestClientSecret}}
}

// grant returns a fresh token pair.
func (f *apiFixture) grant() apiTokenReply {
	f.t.Helper()
	resp, body := f.postForm("/api/oauth2/token", clientCredentials(), false)
	if resp.StatusCode != http.StatusOK {
		f.t.Fatalf("token grant: %d %s", resp.StatusCode, body)
	}
	var tok apiTokenReply
	if err := json.Unmarshal(body, &tok); err != nil {
		f.t.Fatal(err)
	}
	return tok
}

// get GETs path (which may carry a query) with token as bearer, unless token is empty.
func (f *apiFixture) get(path, token string) (*http.Response, []byte) {
	f.t.Helper()
	req, err := http.NewRequest(http.MethodGet, f.srv.URL+path, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return f.do(req)
}

type apiReply struct {
	Messages struct {
		Success []string `json:"success"`
		Error   []string `json:"error"`
	} `json:"messages"`
	Data json.RawMessage `json:"data"`
}

// getData GETs path and returns data, failing unless the answer is 200.
func (f *apiFixture) getData(path, token string) json.RawMessage {
	f.t.Helper()
	resp, body := f.get(path, token)
	if resp.StatusCode != http.StatusOK {
		f.t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
	}
	return decodeReply(f.t, body).Data
}

func decodeReply(t testing.TB, body []byte) apiReply {
	t.Helper()
	var r apiReply
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("not an envelope: %v: %s", err, body)
	}
	if r.Messages.Success == nil || r.Messages.Error == nil {
		t.Fatalf("envelope without both message lists: %s", body)
	}
	return r
}

func TestAPIConfigValidate(t *testing.T) {
	acct, err := servicetrade.NewAccount(servicetrade.AccountConfig{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		acct    *servicetrade.Account
		cfg     servicetrade.APIConfig
		wantErr bool
	}{
		{name: "minimal", acct: acct, cfg: servicetrade.APIConfig{ClientID: "a", ClientSecret: "b"}},
		{name: "nil account", cfg: servicetrade.APIConfig{ClientID: "a", ClientSecret: "b"}, wantErr: true},
		{name: "no secret", acct: acct, cfg: servicetrade.APIConfig{ClientID: "a"}, wantErr: true},
		{name: "fractional lifetime", acct: acct, cfg: servicetrade.APIConfig{ClientID: "a", ClientSecret: "b", TokenLifetime: 1500 * time.Millisecond}, wantErr: true},
		{name: "negative lifetime", acct: acct, cfg: servicetrade.APIConfig{ClientID: "a", ClientSecret: "b", TokenLifetime: -time.Second}, wantErr: true},
		{name: "page size above max", acct: acct, cfg: servicetrade.APIConfig{ClientID: "a", ClientSecret: "b", PageSize: 50, MaxPageSize: 10}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := servicetrade.NewAPI(tt.acct, tt.cfg); (err != nil) != tt.wantErr {
				t.Fatalf("NewAPI() error = %v, wantErr %v", err, tt.wantErr)
			}
		})
	}
}

func TestAPITokenGrant(t *testing.T) {
	f := newAPIFixture(t, servicetrade.AccountConfig{})
	withSecret := func(secret string) url.Values {
		v := clientCredentials()
		v.Set("client_secret", secret)
		return v
	}
	tests := []struct {
		name      string
		form      url.Values
		basic     bool
		wantCode  int
		wantError string // the OAuth2 error code; "" for a token
	}{
		{name: "form credentials", form: clientCredentials(), wantCode: http.StatusOK},
		{name: "basic credentials", form: url.Values{"grant_type": {"client_credentials"}}, basic: true, wantCode: http.StatusOK},
		{name: "wrong secret", form: withSecret("nope"), wantCode: http.StatusUnauthorized, wantError: "invalid_client"},
		{name: "no credentials", form: url.Values{"grant_type": {"client_credentials"}}, wantCode: http.StatusUnauthorized, wantError: "invalid_client"},
		{name: "unsupported grant", form: url.Values{"grant_type": {"password"}}, basic: true, wantCode: http.StatusBadRequest, wantError: "unsupported_grant_type"},
		{name: "no grant type", form: url.Values{}, basic: true, wantCode: http.StatusBadRequest, wantError: "invalid_request"},
		{name: "unknown refresh token", form: url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"nope"}}, basic: true, wantCode: http.StatusBadRequest, wantError: "invalid_grant"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := f.postForm("/api/oauth2/token", tt.form, tt.basic)
			if resp.StatusCode != tt.wantCode {
				t.Fatalf("status = %d, want %d: %s", resp.StatusCode, tt.wantCode, body)
			}
			if resp.Header.Get("x-request-id") == "" {
				t.Error("no x-request-id")
			}
			var tok apiTokenReply
			if err := json.Unmarshal(body, &tok); err != nil {
				t.Fatal(err)
			}
			if tok.Error != tt.wantError {
				t.Fatalf("error = %q, want %q", tok.Error, tt.wantError)
			}
			if tt.wantError != "" {
				return
			}
			if tok.TokenType != "Bearer" || tok.ExpiresIn != 120 || tok.RefreshToken == "" {
				t.Errorf("reply = %+v, want a Bearer token for 120 s with a refresh token", tok)
			}
			claims := jwtClaims(t, tok.AccessToken)
			if claims["sub"] != apiTestClientID || claims["iat"] != float64(apiT0.Unix()) || claims["exp"] != float64(apiT0.Unix()+120) {
				t.Errorf("claims = %v, want sub %s, iat %d, exp iat+120", claims, apiTestClientID, apiT0.Unix())
			}
		})
	}
	if got := f.api.Stats(); got.TokenGrants != 2 || got.TokenRejections != 5 {
		t.Errorf("stats = %+v, want 2 grants and 5 rejections", got)
	}
}

// jwtClaims returns the payload of a JWT (not verified: the test only reads it).
func jwtClaims(t testing.TB, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("access token %q is not a JWT", token)
	}
	header, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil || !bytes.Contains(header, []byte(`"HS256"`)) {
		t.Fatalf("JWT header %s: want alg HS256 (%v)", header, err)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	return claims
}

func TestAPITokenExpiry(t *testing.T) {
	tests := []struct {
		name  string
		after time.Duration
		want  int
	}{
		{name: "fresh", after: 0, want: http.StatusOK},
		{name: "a second before exp", after: 119 * time.Second, want: http.StatusOK},
		{name: "at exp", after: 120 * time.Second, want: http.StatusUnauthorized},
		{name: "long after", after: 24 * time.Hour, want: http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newAPIFixture(t, servicetrade.AccountConfig{})
			tok := f.grant()
			f.clock.Advance(tt.after)
			if resp, body := f.get("/api/location?limit=1", tok.AccessToken); resp.StatusCode != tt.want {
				t.Fatalf("status = %d, want %d: %s", resp.StatusCode, tt.want, body)
			}
		})
	}
}

func TestAPIRefreshTokenRotates(t *testing.T) {
	f := newAPIFixture(t, servicetrade.AccountConfig{})
	first := f.grant()
	refresh := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first.RefreshToken}}

	resp, body := f.postForm("/api/oauth2/token", refresh, true)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("refresh: %d %s", resp.StatusCode, body)
	}
	var second apiTokenReply
	if err := json.Unmarshal(body, &second); err != nil {
		t.Fatal(err)
	}
	if second.RefreshToken == first.RefreshToken || second.AccessToken == first.AccessToken {
		t.Fatal("refresh did not issue a new pair")
	}
	f.getData("/api/location?limit=1", second.AccessToken)

	if resp, body := f.postForm("/api/oauth2/token", refresh, true); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("spent refresh token: %d %s, want 400", resp.StatusCode, body)
	}
	if got := f.api.Stats(); got.TokenGrants != 1 || got.TokenRefreshes != 1 {
		t.Errorf("stats = %+v, want 1 grant and 1 refresh", got)
	}
}

func TestAPIRevoke(t *testing.T) {
	tests := []struct {
		name   string
		revoke func(f *apiFixture, tok apiTokenReply)
	}{
		{name: "oauth2 revoke endpoint", revoke: func(f *apiFixture, tok apiTokenReply) {
			if resp, body := f.postForm("/api/oauth2/revoke", url.Values{"token": {tok.AccessToken}}, true); resp.StatusCode != http.StatusOK {
				t.Fatalf("revoke: %d %s", resp.StatusCode, body)
			}
		}},
		{name: "RevokeAllTokens", revoke: func(f *apiFixture, _ apiTokenReply) { f.api.RevokeAllTokens() }},
		{name: "admin endpoint", revoke: func(f *apiFixture, _ apiTokenReply) {
			req, _ := http.NewRequest(http.MethodPost, f.srv.URL+"/admin/tokens/revoke", nil)
			if resp, body := f.do(req); resp.StatusCode != http.StatusNoContent {
				t.Fatalf("admin revoke: %d %s", resp.StatusCode, body)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newAPIFixture(t, servicetrade.AccountConfig{})
			tok := f.grant()
			f.getData("/api/location?limit=1", tok.AccessToken)
			tt.revoke(f, tok)
			resp, body := f.get("/api/location?limit=1", tok.AccessToken)
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("after revoke: %d %s, want 401", resp.StatusCode, body)
			}
			if got := f.api.Stats().Unauthorized; got != 1 {
				t.Errorf("Unauthorized = %d, want 1", got)
			}
		})
	}
}

func TestAPIRejectsBadBearer(t *testing.T) {
	f := newAPIFixture(t, servicetrade.AccountConfig{})
	other := newAPIFixture(t, servicetrade.AccountConfig{}) // same claims, another signing key
	tok := f.grant().AccessToken
	tests := []struct {
		name, header string
	}{
		{name: "none", header: ""},
		{name: "not bearer", header: "Basic " + tok},
		{name: "garbage", header: "Bearer not.a.jwt"},
		{name: "tampered", header: "Bearer " + tok[:len(tok)-2] + "xx"},
		{name: "signed by another API", header: "Bearer " + other.grant().AccessToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, f.srv.URL+"/api/location?limit=1", nil)
			if tt.header != "" {
				req.Header.Set("Authorization", tt.header)
			}
			resp, body := f.do(req)
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("status = %d, want 401", resp.StatusCode)
			}
			if len(decodeReply(t, body).Messages.Error) == 0 || resp.Header.Get("x-request-id") == "" {
				t.Errorf("401 without messages.error or x-request-id: %s", body)
			}
		})
	}
}

// TestAPIGetEntity fetches one of every entity type and compares it, byte for byte, with
// the account's JSON of it.
func TestAPIGetEntity(t *testing.T) {
	f := newAPIFixture(t, servicetrade.AccountConfig{})
	tok := f.grant().AccessToken
	tests := []struct {
		typ string
		id  int64
		v   any
	}{
		{servicetrade.TypeJob, f.acct.Jobs()[0].ID, f.acct.Jobs()[0]},
		{servicetrade.TypeAsset, f.acct.Assets()[0].ID, f.acct.Assets()[0]},
		{servicetrade.TypeLocation, f.acct.Locations()[0].ID, f.acct.Locations()[0]},
		{servicetrade.TypeClock, f.acct.ClockEvents()[0].ID, f.acct.ClockEvents()[0]},
		{servicetrade.TypeAppointment, f.acct.Appointments()[0].ID, f.acct.Appointments()[0]},
		{servicetrade.TypeDeficiency, f.acct.Deficiencies()[0].ID, f.acct.Deficiencies()[0]},
		{servicetrade.TypeCompany, f.acct.Companies()[0].ID, f.acct.Companies()[0]},
	}
	for _, tt := range tests {
		t.Run(tt.typ, func(t *testing.T) {
			got := f.getData("/api/"+tt.typ+"/"+strconv.FormatInt(tt.id, 10), tok)
			want, err := json.Marshal(tt.v)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("data = %s\nwant   %s", got, want)
			}
		})
	}
}

func TestAPINotFound(t *testing.T) {
	f := newAPIFixture(t, servicetrade.AccountConfig{})
	tok := f.grant().AccessToken
	// Run the account until it has deleted one of each kind that gets deleted.
	deleted := map[string]int64{}
	for i := 0; len(deleted) < 4 && i < 20000; i++ {
		for _, c := range f.acct.NextChanges(1, apiT0.Add(time.Hour)) {
			if c.Action == servicetrade.ActionDeleted {
				deleted[c.Entity.Type] = c.Entity.ID
			}
		}
	}
	if len(deleted) < 4 {
		t.Fatalf("deleted only %v", deleted)
	}
	type tc struct {
		name, path string
		want       int
	}
	tests := []tc{
		{name: "unknown job", path: "/api/job/42", want: http.StatusNotFound},
		{name: "unknown clock event", path: "/api/clock/" + strconv.FormatInt(servicetrade.DefaultIDBase-16, 10), want: http.StatusNotFound},
		{name: "id not a number", path: "/api/job/abc", want: http.StatusBadRequest},
		{name: "id beyond int64", path: "/api/job/9223372036854775808", want: http.StatusBadRequest},
		{name: "no such resource", path: "/api/widget/1", want: http.StatusNotFound},
	}
	for typ, id := range deleted {
		tests = append(tests, tc{name: "deleted " + typ, path: "/api/" + typ + "/" + strconv.FormatInt(id, 10), want: http.StatusNotFound})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := f.get(tt.path, tok)
			if resp.StatusCode != tt.want {
				t.Fatalf("status = %d, want %d: %s", resp.StatusCode, tt.want, body)
			}
			if len(decodeReply(t, body).Messages.Error) == 0 {
				t.Errorf("no messages.error: %s", body)
			}
		})
	}
}

func TestAPIExactIDsAbove2To53(t *testing.T) {
	const base = 1<<53 + 1 // odd: no float64 holds it
	f := newAPIFixture(t, servicetrade.AccountConfig{IDBase: base})
	tok := f.grant().AccessToken
	job := f.acct.Jobs()[0]
	if job.ID <= 1<<53 || job.ID == int64(float64(job.ID)) {
		t.Fatalf("job id %d is representable as float64; the test proves nothing", job.ID)
	}
	id := strconv.FormatInt(job.ID, 10)
	data := f.getData("/api/job/"+id, tok)
	if !bytes.Contains(data, []byte(`"id":`+id+",")) {
		t.Fatalf("data does not carry id %s exactly: %s", id, data)
	}
	var got servicetrade.Job
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	if got.ID != job.ID || got.LocationID != job.LocationID || got.CustomerID != job.CustomerID {
		t.Errorf("ids = %d/%d/%d, want %d/%d/%d", got.ID, got.LocationID, got.CustomerID, job.ID, job.LocationID, job.CustomerID)
	}
}

// apiListPage is one page of a list, entities left as JSON.
type apiListPage struct {
	page, totalPages int
	items            []json.RawMessage
}

func (f *apiFixture) apiListPage(typ, plural string, q url.Values, tok string) apiListPage {
	f.t.Helper()
	data := f.getData("/api/"+typ+"?"+q.Encode(), tok)
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		f.t.Fatal(err)
	}
	var p apiListPage
	for key, dst := range map[string]any{"page": &p.page, "totalPages": &p.totalPages, plural: &p.items} {
		raw, ok := m[key]
		if !ok {
			f.t.Fatalf("data has no %q: %s", key, data)
		}
		if err := json.Unmarshal(raw, dst); err != nil {
			f.t.Fatal(err)
		}
	}
	return p
}

// apiEntityKey is what every entity has: id and update time.
type apiEntityKey struct {
	ID      int64 `json:"id"`
	Updated int64 `json:"updated"`
}

// walk reads every page of a list and returns the keys in the order served.
func (f *apiFixture) walk(typ, plural string, q url.Values, tok string) []apiEntityKey {
	f.t.Helper()
	var keys []apiEntityKey
	for page := 1; ; page++ {
		q.Set("page", strconv.Itoa(page))
		p := f.apiListPage(typ, plural, q, tok)
		if p.page != page {
			f.t.Fatalf("page = %d, want %d", p.page, page)
		}
		for _, raw := range p.items {
			var k apiEntityKey
			if err := json.Unmarshal(raw, &k); err != nil {
				f.t.Fatal(err)
			}
			keys = append(keys, k)
		}
		if page >= p.totalPages {
			if len(p.items) == 0 && page > 1 {
				f.t.Fatalf("last page %d is empty", page)
			}
			return keys
		}
	}
}

func apiIDs[T any](vs []T, id func(T) int64) map[int64]bool {
	m := make(map[int64]bool, len(vs))
	for _, v := range vs {
		m[id(v)] = true
	}
	return m
}

// TestAPIListPagination walks each list at several page sizes: every entity comes
// exactly once, in order of update time, then id.
func TestAPIListPagination(t *testing.T) {
	f := newAPIFixture(t, servicetrade.AccountConfig{})
	// Spread update times, so that ordering by update time differs from ordering by id.
	for i := range 300 {
		f.acct.NextChanges(1, apiT0.Add(time.Duration(i)*time.Minute))
	}
	tok := f.grant().AccessToken
	lists := []struct {
		typ, plural string
		want        map[int64]bool
	}{
		{servicetrade.TypeJob, "jobs", apiIDs(f.acct.Jobs(), func(v servicetrade.Job) int64 { return v.ID })},
		{servicetrade.TypeAsset, "assets", apiIDs(f.acct.Assets(), func(v servicetrade.Asset) int64 { return v.ID })},
		{servicetrade.TypeLocation, "locations", apiIDs(f.acct.Locations(), func(v servicetrade.Location) int64 { return v.ID })},
		{servicetrade.TypeClock, "clockEvents", apiIDs(f.acct.ClockEvents(), func(v servicetrade.ClockEvent) int64 { return v.ID })},
		{servicetrade.TypeAppointment, "appointments", apiIDs(f.acct.Appointments(), func(v servicetrade.Appointment) int64 { return v.ID })},
	}
	for _, l := range lists {
		for _, limit := range []int{0, 1, 7, 100, 1000} { // 0: the default; 1000: cut to 500
			t.Run(l.typ+"/limit="+strconv.Itoa(limit), func(t *testing.T) {
				q := url.Values{}
				if limit > 0 {
					q.Set("limit", strconv.Itoa(limit))
				}
				keys := f.walk(l.typ, l.plural, q, tok)
				seen := map[int64]bool{}
				for i, k := range keys {
					if seen[k.ID] {
						t.Fatalf("id %d served twice", k.ID)
					}
					seen[k.ID] = true
					if !l.want[k.ID] {
						t.Fatalf("id %d is not in the account", k.ID)
					}
					if i > 0 && (keys[i-1].Updated > k.Updated || keys[i-1].Updated == k.Updated && keys[i-1].ID > k.ID) {
						t.Fatalf("out of order at %d: %+v then %+v", i, keys[i-1], k)
					}
				}
				if len(seen) != len(l.want) {
					t.Fatalf("served %d, account has %d", len(seen), len(l.want))
				}
			})
		}
	}
	t.Run("page past the last", func(t *testing.T) {
		p := f.apiListPage(servicetrade.TypeJob, "jobs", url.Values{"page": {"1000"}}, tok)
		if len(p.items) != 0 || p.totalPages == 0 || p.totalPages >= 1000 {
			t.Fatalf("page 1000 = %+v, want empty with the real totalPages", p)
		}
	})
}

func TestAPIListUpdatedAfter(t *testing.T) {
	f := newAPIFixture(t, servicetrade.AccountConfig{})
	later := apiT0.Add(time.Hour)
	f.acct.NextChanges(200, later)
	tok := f.grant().AccessToken

	tests := []struct {
		name  string
		after time.Time
	}{
		{name: "before everything", after: apiT0.Add(-time.Second)},
		{name: "between start and changes", after: apiT0.Add(30 * time.Minute)},
		{name: "at the changes (strictly after)", after: later},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := map[int64]bool{}
			for _, j := range f.acct.Jobs() {
				if j.Updated > tt.after.Unix() {
					want[j.ID] = true
				}
			}
			keys := f.walk(servicetrade.TypeJob, "jobs", url.Values{"updatedAfter": {strconv.FormatInt(tt.after.Unix(), 10)}, "limit": {"10"}}, tok)
			got := map[int64]bool{}
			for _, k := range keys {
				got[k.ID] = true
			}
			if len(got) != len(want) || len(keys) != len(want) {
				t.Fatalf("got %d jobs (%d distinct), want %d", len(keys), len(got), len(want))
			}
			for id := range want {
				if !got[id] {
					t.Fatalf("job %d missing", id)
				}
			}
		})
	}
	// The middle case must actually filter.
	all := len(f.acct.Jobs())
	some := len(f.walk(servicetrade.TypeJob, "jobs", url.Values{"updatedAfter": {strconv.FormatInt(apiT0.Add(30*time.Minute).Unix(), 10)}}, tok))
	if some == 0 || some == all {
		t.Fatalf("updatedAfter between start and changes kept %d of %d jobs", some, all)
	}
}

func TestAPIClockEventFilters(t *testing.T) {
	f := newAPIFixture(t, servicetrade.AccountConfig{})
	for i := range 400 {
		f.acct.NextChanges(1, apiT0.Add(time.Duration(i)*time.Minute))
	}
	tok := f.grant().AccessToken
	events := f.acct.ClockEvents()
	first := events[len(events)/2]
	mid := apiT0.Add(200 * time.Minute).Unix()
	tests := []struct {
		name  string
		query url.Values
		keep  func(servicetrade.ClockEvent) bool
	}{
		{"userId", url.Values{"userId": {strconv.FormatInt(first.UserID, 10)}}, func(c servicetrade.ClockEvent) bool { return c.UserID == first.UserID }},
		{"jobId", url.Values{"jobId": {strconv.FormatInt(first.JobID, 10)}}, func(c servicetrade.ClockEvent) bool { return c.JobID == first.JobID }},
		{"activity onsite", url.Values{"activity": {servicetrade.ActivityOnsite}}, func(c servicetrade.ClockEvent) bool { return c.Activity == servicetrade.ActivityOnsite }},
		{"startTime", url.Values{"startTime": {strconv.FormatInt(mid, 10)}}, func(c servicetrade.ClockEvent) bool { return c.ClockIn >= mid }},
		{"endTime", url.Values{"endTime": {strconv.FormatInt(mid, 10)}}, func(c servicetrade.ClockEvent) bool { return c.ClockIn < mid }},
		{"user and activity", url.Values{"userId": {strconv.FormatInt(first.UserID, 10)}, "activity": {servicetrade.ActivityEnroute}}, func(c servicetrade.ClockEvent) bool {
			return c.UserID == first.UserID && c.Activity == servicetrade.ActivityEnroute
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := map[int64]bool{}
			for _, c := range events {
				if tt.keep(c) {
					want[c.ID] = true
				}
			}
			if len(want) == 0 || len(want) == len(events) {
				t.Fatalf("filter keeps %d of %d events; the test proves nothing", len(want), len(events))
			}
			tt.query.Set("limit", "5")
			keys := f.walk(servicetrade.TypeClock, "clockEvents", tt.query, tok)
			if len(keys) != len(want) {
				t.Fatalf("got %d events, want %d", len(keys), len(want))
			}
			for _, k := range keys {
				if !want[k.ID] {
					t.Fatalf("event %d should have been filtered out", k.ID)
				}
			}
		})
	}
}

func TestAPIListBadQuery(t *testing.T) {
	f := newAPIFixture(t, servicetrade.AccountConfig{})
	tok := f.grant().AccessToken
	tests := []struct{ name, query string }{
		{"page 0", "/api/job?page=0"},
		{"page not a number", "/api/job?page=x"},
		{"limit 0", "/api/asset?limit=0"},
		{"updatedAfter not Unix seconds", "/api/location?updatedAfter=2026-01-01"},
		{"activity unknown", "/api/clock?activity=lunch"},
		{"userId not a number", "/api/clock?userId=me"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := f.get(tt.query, tok)
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("status = %d, want 400: %s", resp.StatusCode, body)
			}
			if len(decodeReply(t, body).Messages.Error) == 0 {
				t.Errorf("no messages.error: %s", body)
			}
		})
	}
}

func TestAPIFaults(t *testing.T) {
	tests := []struct {
		name           string
		faults         fault.Faults
		want           int
		wantRetryAfter bool
	}{
		{name: "healthy", faults: fault.Faults{}, want: http.StatusOK},
		{name: "rate limited", faults: fault.Faults{RatePerSecond: 0.001}, want: http.StatusTooManyRequests, wantRetryAfter: true},
		{name: "outage", faults: fault.Faults{Outage: true}, want: http.StatusServiceUnavailable, wantRetryAfter: true},
		{name: "fail next", faults: fault.Faults{FailNext: 1, ErrorStatus: http.StatusBadGateway}, want: http.StatusBadGateway},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newAPIFixture(t, servicetrade.AccountConfig{})
			tok := f.grant().AccessToken
			// Set the faults over HTTP, as an operator would.
			body, _ := json.Marshal(tt.faults)
			req, _ := http.NewRequest(http.MethodPut, f.srv.URL+"/admin/faults", bytes.NewReader(body))
			if resp, b := f.do(req); resp.StatusCode != http.StatusOK {
				t.Fatalf("PUT /admin/faults: %d %s", resp.StatusCode, b)
			}
			resp, b := f.get("/api/job?limit=1", tok)
			if resp.StatusCode != tt.want {
				t.Fatalf("status = %d, want %d: %s", resp.StatusCode, tt.want, b)
			}
			if ra, _ := strconv.Atoi(resp.Header.Get("Retry-After")); (ra > 0) != tt.wantRetryAfter {
				t.Errorf("Retry-After = %q, want one: %v", resp.Header.Get("Retry-After"), tt.wantRetryAfter)
			}
			if resp.Header.Get("x-request-id") == "" {
				t.Error("no x-request-id")
			}
			// Admin endpoints are never faulted, and healing takes effect at once.
			f.api.Faults().Set(fault.Faults{})
			f.getData("/api/job?limit=1", tok)
		})
	}
}

func TestAPIAdminStats(t *testing.T) {
	f := newAPIFixture(t, servicetrade.AccountConfig{})
	tok := f.grant().AccessToken
	f.getData("/api/job?limit=1", tok)
	f.get("/api/job?limit=1", "")
	req, _ := http.NewRequest(http.MethodGet, f.srv.URL+"/admin/api-stats", nil)
	resp, body := f.do(req)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("api-stats: %d %s", resp.StatusCode, body)
	}
	var got servicetrade.APIStats
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if want := (servicetrade.APIStats{TokenGrants: 1, Unauthorized: 1, Requests: 1}); got != want {
		t.Errorf("stats = %+v, want %+v", got, want)
	}
}
