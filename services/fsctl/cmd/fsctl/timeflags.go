package main

import (
	"fmt"
	"time"
)

// when parses an RFC 3339 time or a duration ago ("2h").
func when(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return time.Now().Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q: want an RFC 3339 time (2026-11-29T08:00:00Z) or a duration ago (2h)", s)
	}
	return t, nil
}
