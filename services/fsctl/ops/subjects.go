package ops

import "strings"

// subjectMatches reports whether subject matches the NATS filter (with * and >).
func subjectMatches(filter, subject string) bool {
	f, s := strings.Split(filter, "."), strings.Split(subject, ".")
	for i, tok := range f {
		if tok == ">" {
			return len(s) > i
		}
		if i >= len(s) || (tok != "*" && tok != s[i]) {
			return false
		}
	}
	return len(f) == len(s)
}

// intersectFilter returns the filter that selects exactly the subjects both filters select
// (NATS filters: tokens, '*' for one token, a final '>' for one or more), and false when no
// subject matches both.
func intersectFilter(a, b string) (string, bool) {
	x, y := strings.Split(a, "."), strings.Split(b, ".")
	var out []string
	for i := 0; ; i++ {
		switch {
		case i == len(x) && i == len(y):
			return strings.Join(out, "."), true
		case i < len(x) && x[i] == ">":
			if i == len(y) {
				return "", false // '>' needs at least one more token
			}
			return strings.Join(append(out, y[i:]...), "."), true
		case i < len(y) && y[i] == ">":
			if i == len(x) {
				return "", false
			}
			return strings.Join(append(out, x[i:]...), "."), true
		case i == len(x) || i == len(y):
			return "", false
		case x[i] == "*":
			out = append(out, y[i])
		case y[i] == "*" || x[i] == y[i]:
			out = append(out, x[i])
		default:
			return "", false
		}
	}
}

// narrowFilters returns the filters that select what filters select and subject matches:
// each filter intersected with subject, those that can match nothing dropped, and those
// another one covers dropped. With subject "" it returns filters.
func narrowFilters(filters []string, subject string) []string {
	if subject == "" {
		return append([]string(nil), filters...)
	}
	var out []string
	for _, f := range filters {
		if n, ok := intersectFilter(f, subject); ok {
			out = append(out, n)
		}
	}
	// Intersections of overlapping filters can coincide or nest; JetStream refuses
	// overlapping filter subjects on one consumer.
	var kept []string
	for i, f := range out {
		covered := false
		for j, g := range out {
			if i != j && filterCovers(g, f) && (!filterCovers(f, g) || j < i) {
				covered = true
				break
			}
		}
		if !covered {
			kept = append(kept, f)
		}
	}
	return kept
}

// filterCovers reports whether every subject filter b selects, filter a selects too.
func filterCovers(a, b string) bool {
	n, ok := intersectFilter(a, b)
	return ok && n == b
}
