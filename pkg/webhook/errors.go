// Package webhook verifies and parses the webhook deliveries fieldstream accepts:
// ServiceTrade's native batched payload and Standard Webhooks v1. It does no I/O; the
// gateway turns its errors into HTTP answers.
//
// Errors wrap one of the sentinels below, so callers classify with errors.Is:
// ErrUnauthenticated for anything that fails authentication (signature, timestamp, token),
// ErrMalformed for input that is not a valid delivery.
package webhook

import "errors"

var (
	// ErrUnauthenticated: the delivery cannot be attributed to the tenant's sender.
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrMalformed: the delivery is not a valid payload of its kind.
	ErrMalformed = errors.New("malformed payload")
)

// Specific authentication failures; each also matches ErrUnauthenticated.
var (
	ErrMissingSignatureHeaders = authError("missing webhook-id, webhook-timestamp or webhook-signature header")
	ErrBadTimestamp            = authError("webhook-timestamp is not Unix seconds")
	ErrTimestampOutOfTolerance = authError("webhook-timestamp outside the tolerance window")
	ErrNoMatchingSignature     = authError("no webhook-signature matches")
	ErrTooManySignatures       = authError("webhook-signature holds more signatures than a sender signs with")
	ErrBadToken                = authError("hook URL token does not match")
)

type authErr struct{ msg string }

func authError(msg string) error        { return &authErr{msg} }
func (e *authErr) Error() string        { return e.msg }
func (e *authErr) Is(target error) bool { return target == ErrUnauthenticated }
