// Package failure classifies errors once, where they arise, as transient (worth retrying,
// perhaps after a delay the other side named) or permanent (retrying cannot help). Clients
// of outside systems wrap their errors here; the consumer pipeline reads the class to retry,
// back off or dead-letter.
//
// An error that was never classified is transient: a network error, a timeout or an
// unexpected failure may well pass.
package failure

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Class is what can be done about an error.
type Class string

const (
	ClassTransient Class = "transient"
	ClassPermanent Class = "permanent"
)

// Error is a classified error. RetryAfter, when set, is the delay the other side asked
// for (HTTP Retry-After).
type Error struct {
	Class      Class
	RetryAfter time.Duration
	Err        error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Permanent marks err as one that retrying cannot fix. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &Error{Class: ClassPermanent, Err: err}
}

// Transient marks err as worth retrying, after retryAfter if it is positive.
// Transient(nil, …) is nil.
func Transient(err error, retryAfter time.Duration) error {
	if err == nil {
		return nil
	}
	return &Error{Class: ClassTransient, RetryAfter: retryAfter, Err: err}
}

// ClassOf returns err's class: the outermost classification wins; unclassified errors are
// transient.
func ClassOf(err error) Class {
	var e *Error
	if errors.As(err, &e) {
		return e.Class
	}
	return ClassTransient
}

// IsPermanent reports whether err is classified permanent.
func IsPermanent(err error) bool { return err != nil && ClassOf(err) == ClassPermanent }

// RetryAfterOf returns the delay err asks for, or 0.
func RetryAfterOf(err error) time.Duration {
	var e *Error
	if errors.As(err, &e) {
		return e.RetryAfter
	}
	return 0
}

// HTTPStatusError is an answer from an outside system that was not a success.
type HTTPStatusError struct {
	Method, URL string
	Status      int
	Body        string // the start of the answer's body, for the operator
}

func (e *HTTPStatusError) Error() string {
	if e.Body == "" {
		return fmt.Sprintf("%s %s: HTTP %d", e.Method, e.URL, e.Status)
	}
	return fmt.Sprintf("%s %s: HTTP %d: %s", e.Method, e.URL, e.Status, e.Body)
}

// FromHTTP classifies a non-2xx answer: 408, 425, 429 and 5xx are transient (429 and 503
// with their Retry-After); 400, 401, 403, 404, 409, 410, 422 and every other 4xx are
// permanent. A 401 is permanent here because clients retry it once with a fresh token
// before they give up.
func FromHTTP(method, url string, status int, header http.Header, body string) error {
	err := &HTTPStatusError{Method: method, URL: url, Status: status, Body: body}
	switch {
	case status == http.StatusRequestTimeout, status == http.StatusTooEarly, status == http.StatusTooManyRequests, status >= 500:
		return Transient(err, parseRetryAfter(header.Get("Retry-After"), time.Now()))
	default:
		return Permanent(err)
	}
}

// StatusOf returns the HTTP status inside err, or 0.
func StatusOf(err error) int {
	var e *HTTPStatusError
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// parseRetryAfter reads delay-seconds or an HTTP date; anything else is 0.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
