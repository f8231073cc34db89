package gateway

import (
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strconv"

	"github.com/fieldstream/fieldstream/pkg/failure"
	"github.com/fieldstream/fieldstream/pkg/webhook"
)

var (
	errUnknownTenant  = errors.New("unknown tenant")
	errSourceDisabled = errors.New("this webhook source is not configured for the tenant")
	errBodyTooLarge   = errors.New("request body over the limit")
	errEventTooLarge  = errors.New("event too large to store")
	errRateLimited    = errors.New("tenant over its event rate limit")
	// errThrottled is the rate limit's answer to a sender that counts every 4xx as
	// delivered and drops the message (ServiceTrade: any 200–499), which must be asked to
	// retry with a 5xx; errRateLimited answers the others.
	errThrottled        = errors.New("tenant over its event rate limit; retry later")
	errNotPersisted     = errors.New("events not persisted in time; retry")
	errNotDeliverable   = errors.New("no valid subject for an event")
	errMissingTenantKey = errors.New("tenant is not configured for Standard Webhooks")
	errBodyRead         = errors.New("could not read the request body")
	errNoHook           = errors.New("no webhook endpoint at this path: POST /hooks/{tenant}/servicetrade/{token} or /hooks/{tenant}/standard")
	errNotPost          = errors.New("webhooks are POSTed")
)

// answers maps each error class to its HTTP status and the code in the JSON error body.
// It is the only place where errors become statuses. Order matters: first match wins.
var answers = []struct {
	err    error
	status int
	code   string
}{
	{errUnknownTenant, http.StatusNotFound, "unknown_tenant"},
	{errNoHook, http.StatusNotFound, "not_found"},
	{errNotPost, http.StatusMethodNotAllowed, "method_not_allowed"},
	{errSourceDisabled, http.StatusUnauthorized, "unauthenticated"},
	{errMissingTenantKey, http.StatusUnauthorized, "unauthenticated"},
	{webhook.ErrUnauthenticated, http.StatusUnauthorized, "unauthenticated"},
	{errBodyTooLarge, http.StatusRequestEntityTooLarge, "body_too_large"},
	{errEventTooLarge, http.StatusRequestEntityTooLarge, "event_too_large"},
	{errBodyRead, http.StatusBadRequest, "bad_body"},
	{webhook.ErrMalformed, http.StatusBadRequest, "malformed"},
	{errNotDeliverable, http.StatusBadRequest, "malformed"},
	{errRateLimited, http.StatusTooManyRequests, "rate_limited"},
	{errThrottled, http.StatusServiceUnavailable, "rate_limited"},
	{errNotPersisted, http.StatusServiceUnavailable, "not_persisted"},
}

// classify returns the status and code for err; an error of no known class is a 500.
func classify(err error) (int, string) {
	for _, a := range answers {
		if errors.Is(err, a.err) {
			return a.status, a.code
		}
	}
	return http.StatusInternalServerError, "internal"
}

type errorBody struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

// writeError answers err as JSON and returns the code it used (the metrics outcome) and
// the status. A 4xx also closes the connection.
func writeError(w http.ResponseWriter, err error) (string, int) {
	status, code := classify(err)
	msg := err.Error()
	if status == http.StatusInternalServerError {
		msg = "internal error"
	}
	if status < 500 {
		// A refused request may be framed otherwise than its sender meant (say, with both
		// Content-Length and Transfer-Encoding): read no further request from its connection.
		w.Header().Set("Connection", "close")
	}
	if after := failure.RetryAfterOf(err); after > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(after.Seconds()))))
	}
	writeJSON(w, status, errorBody{Error: msg, Code: code})
	return code, status
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v) // only our own plain structs: cannot fail
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}
