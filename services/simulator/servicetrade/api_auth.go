package servicetrade

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// OAuth2 as ServiceTrade offers it: a token endpoint that takes form-encoded
// client_credentials and refresh_token grants (RFC 6749 §4.4, §6) and answers with a JWT
// access token that carries exp, plus a refresh token that is rotated on every use; and a
// revocation endpoint (RFC 7009). The token endpoint answers in OAuth2's own JSON, not in
// the resource envelope, because that is what OAuth2 clients parse.

// apiTokenReply is RFC 6749 §5.1's successful answer.
type apiTokenReply struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
}

// apiClaims are the access token's JWT claims.
type apiClaims struct {
	Issuer    string `json:"iss"`
	Subject   string `json:"sub"` // the client id
	IssuedAt  int64  `json:"iat"`
	ExpiresAt int64  `json:"exp"`
	ID        string `json:"jti"`
}

var apiJWTHeader = base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))

// serveToken is POST /api/oauth2/token.
func (a *API) serveToken(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, apiMaxFormBytes)
	if err := r.ParseForm(); err != nil {
		a.rejectToken(w, http.StatusBadRequest, "invalid_request")
		return
	}
	client, ok := a.authenticateClient(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Basic realm="servicetrade"`)
		a.rejectToken(w, http.StatusUnauthorized, "invalid_client")
		return
	}
	switch r.PostForm.Get("grant_type") {
	case "client_credentials":
		reply, _ := a.issueTokens(client, "")
		writeTokenReply(w, reply)
	case "refresh_token":
		refresh := r.PostForm.Get("refresh_token")
		if refresh == "" {
			a.rejectToken(w, http.StatusBadRequest, "invalid_request")
			return
		}
		reply, ok := a.issueTokens(client, refresh)
		if !ok {
			a.rejectToken(w, http.StatusBadRequest, "invalid_grant")
			return
		}
		writeTokenReply(w, reply)
	case "":
		a.rejectToken(w, http.StatusBadRequest, "invalid_request")
	default:
		a.rejectToken(w, http.StatusBadRequest, "unsupported_grant_type")
	}
}

// serveRevoke is POST /api/oauth2/revoke: the client authenticates as at the token
// endpoint and names one access or refresh token in the form field token. As RFC 7009
// asks, an unknown token is not an error.
func (a *API) serveRevoke(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, apiMaxFormBytes)
	if err := r.ParseForm(); err != nil {
		a.rejectToken(w, http.StatusBadRequest, "invalid_request")
		return
	}
	client, ok := a.authenticateClient(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Basic realm="servicetrade"`)
		a.rejectToken(w, http.StatusUnauthorized, "invalid_client")
		return
	}
	token := r.PostForm.Get("token")
	if token == "" {
		a.rejectToken(w, http.StatusBadRequest, "invalid_request")
		return
	}
	a.mu.Lock()
	if claims, ok := a.verifyJWT(token); ok && claims.Subject == client {
		delete(a.access, claims.ID)
	} else if a.refresh[token] == client {
		delete(a.refresh, token)
	}
	a.mu.Unlock()
	writeAPIData(w, map[string]any{})
}

// RevokeAllTokens revokes every access and refresh token issued so far, so that the next
// resource request of every client is answered 401. POST /admin/tokens/revoke does the
// same over HTTP.
func (a *API) RevokeAllTokens() {
	a.mu.Lock()
	defer a.mu.Unlock()
	clear(a.access)
	clear(a.refresh)
}

// authenticateClient returns the client id if the request carries the configured
// credentials, by HTTP Basic (whose parts RFC 6749 §2.3.1 form-encodes) or by the form
// fields client_id and client_secret.
func (a *API) authenticateClient(r *http.Request) (string, bool) {
	id, secret, basic := r.BasicAuth()
	if basic {
		var err1, err2 error
		id, err1 = url.QueryUnescape(id)
		secret, err2 = url.QueryUnescape(secret)
		if err1 != nil || err2 != nil {
			return "", false
		}
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	idOK := subtle.ConstantTimeCompare([]byte(id), []byte(a.cfg.ClientID))
	secretOK := subtle.ConstantTimeCompare([]byte(secret), []byte(a.cfg.ClientSecret))
	return id, idOK&secretOK == 1
}

// issueTokens issues an access token and a refresh token to client. With usedRefresh it
// is the refresh_token grant: usedRefresh must be a live refresh token of client, and is
// spent. Expired access tokens are forgotten on the way.
func (a *API) issueTokens(client, usedRefresh string) (apiTokenReply, bool) {
	now := a.cfg.Now().Unix()
	lifetime := int64(a.cfg.TokenLifetime / time.Second)
	claims := apiClaims{
		Issuer:    apiTokenIssuer,
		Subject:   client,
		IssuedAt:  now,
		ExpiresAt: now + lifetime,
		ID:        randomHex(16),
	}
	reply := apiTokenReply{
		AccessToken:  a.signJWT(claims),
		TokenType:    "Bearer",
		ExpiresIn:    lifetime,
		RefreshToken: randomHex(32),
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if usedRefresh != "" {
		if owner, ok := a.refresh[usedRefresh]; !ok || owner != client {
			return apiTokenReply{}, false
		}
		delete(a.refresh, usedRefresh)
		a.stats.TokenRefreshes++
	} else {
		a.stats.TokenGrants++
	}
	for jti, exp := range a.access {
		if exp <= now {
			delete(a.access, jti)
		}
	}
	a.access[claims.ID] = claims.ExpiresAt
	a.refresh[reply.RefreshToken] = client
	return reply, true
}

func (a *API) rejectToken(w http.ResponseWriter, status int, code string) {
	a.mu.Lock()
	a.stats.TokenRejections++
	a.mu.Unlock()
	w.Header().Set("Cache-Control", "no-store")
	writeAPIJSON(w, status, map[string]string{"error": code})
}

func writeTokenReply(w http.ResponseWriter, reply apiTokenReply) {
	w.Header().Set("Cache-Control", "no-store")
	writeAPIJSON(w, http.StatusOK, reply)
}

// authorized lets a request through to next only with a bearer token this API issued
// that is neither expired (by Now) nor revoked; others are answered 401.
func (a *API) authorized(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !a.validBearer(r.Header.Get("Authorization")) {
			a.mu.Lock()
			a.stats.Unauthorized++
			a.mu.Unlock()
			w.Header().Set("WWW-Authenticate", apiWWWAuthenticateHint)
			writeAPIError(w, http.StatusUnauthorized, "invalid, expired or revoked access token", nil)
			return
		}
		a.mu.Lock()
		a.stats.Requests++
		a.mu.Unlock()
		next(w, r)
	}
}

func (a *API) validBearer(header string) bool {
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	claims, ok := a.verifyJWT(strings.TrimSpace(token))
	if !ok {
		return false
	}
	now := a.cfg.Now().Unix()
	a.mu.Lock()
	_, live := a.access[claims.ID]
	a.mu.Unlock()
	return live && now < claims.ExpiresAt
}

func (a *API) signJWT(c apiClaims) string {
	payload, _ := json.Marshal(c) // strings and integers: cannot fail
	signed := apiJWTHeader + "." + base64.RawURLEncoding.EncodeToString(payload)
	return signed + "." + base64.RawURLEncoding.EncodeToString(a.jwtMAC(signed))
}

// verifyJWT returns the claims of a token this API signed; it does not look at exp.
func (a *API) verifyJWT(token string) (apiClaims, bool) {
	header, rest, ok1 := strings.Cut(token, ".")
	payload, sig, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || header != apiJWTHeader {
		return apiClaims{}, false
	}
	gotMAC, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(gotMAC, a.jwtMAC(header+"."+payload)) {
		return apiClaims{}, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return apiClaims{}, false
	}
	var c apiClaims
	if err := json.Unmarshal(raw, &c); err != nil {
		return apiClaims{}, false
	}
	return c, true
}

func (a *API) jwtMAC(signed string) []byte {
	m := hmac.New(sha256.New, a.cfg.SigningKey)
	m.Write([]byte(signed))
	return m.Sum(nil)
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand, Go 1.24+)
	return hex.EncodeToString(b)
}
