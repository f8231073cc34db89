package event

import (
	"errors"
	"fmt"
	"strings"
)

// SubjectPrefix is the first token of every event subject; the EVENTS stream captures
// SubjectPrefix + ".>".
const SubjectPrefix = "events"

// ErrInvalidSubjectToken is returned when a subject part is empty or cannot stand as one
// NATS subject token.
var ErrInvalidSubjectToken = errors.New("invalid subject token")

// Subject is events.<tenant>.<entity>.<id>.<action>: one entity's whole history is the
// filter events.<tenant>.<entity>.<id>.>. Every part must already be a valid token (see
// Token and ValidToken); Subject returns ErrInvalidSubjectToken otherwise.
func Subject(tenant, entity, id, action string) (string, error) {
	for _, p := range [...]string{tenant, entity, id, action} {
		if !ValidToken(p) {
			return "", fmt.Errorf("%w: %q", ErrInvalidSubjectToken, p)
		}
	}
	return SubjectPrefix + "." + tenant + "." + entity + "." + id + "." + action, nil
}

// ValidToken reports whether s is a non-empty run of ASCII letters, digits, '-' and '_' of
// at most 128 bytes: safe as one NATS subject token and as a JetStream KV key.
func ValidToken(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// SubjectParts splits an event subject into its parts; ok is false when subj is not of
// the form Subject builds.
func SubjectParts(subj string) (tenant, entity, id, action string, ok bool) {
	p := strings.Split(subj, ".")
	if len(p) != 5 || p[0] != SubjectPrefix {
		return "", "", "", "", false
	}
	return p[1], p[2], p[3], p[4], true
}
