package webhook

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

func TestCheckStrict(t *testing.T) {
	many := func(n int, last string) string {
		var b strings.Builder
		b.WriteString("{")
		for i := range n {
			fmt.Fprintf(&b, `"k%d":%d,`, i, i)
		}
		b.WriteString(`"` + last + `":0}`)
		return b.String()
	}
	tests := []struct {
		name    string
		doc     string
		wantErr error
	}{
		{name: "plain", doc: `{"id":1,"a":[{"id":2},{"id":3}],"b":{"id":{"id":4}}}`},
		{name: "same key in sibling objects", doc: `[{"id":1},{"id":2}]`},
		{name: "same key at two levels", doc: `{"id":{"id":{"id":1}}}`},
		{name: "keys differing beyond case folding", doc: `{"ids":1,"id":2,"i d":3}`},
		{name: "small and huge numbers", doc: `[-0, 1e-400, 1e308, -1.7976931348623157e308, 9223372036854775808]`},
		{name: "64 levels", doc: strings.Repeat("[", 63) + `{"a":1}` + strings.Repeat("]", 63)},
		{name: "many distinct keys", doc: many(1000, "other")},
		{name: "two ids", doc: `{"id":1,"id":2}`, wantErr: ErrMalformed},
		{name: "two ids in a nested object", doc: `{"data":[{"entity":{"type":"job","id":1,"type":"asset"}}]}`, wantErr: ErrMalformed},
		{name: "case-folded duplicate", doc: `{"action":"created","Action":"deleted"}`, wantErr: ErrMalformed},
		{name: "escaped duplicate", doc: `{"id":1,"\u0069d":2}`, wantErr: ErrMalformed},
		{name: "Kelvin sign folds to k", doc: `{"kind":1,"\u212aind":2}`, wantErr: ErrMalformed},
		{name: "long s folds to s", doc: `{"messageId":1,"me\u017f\u017fageId":2}`, wantErr: ErrMalformed},
		{name: "duplicate after many keys", doc: many(1000, "k7"), wantErr: ErrMalformed},
		{name: "duplicate right at the map switch", doc: many(manyKeys-1, "k0"), wantErr: ErrMalformed},
		{name: "65 levels", doc: strings.Repeat("[", 64) + `{"a":1}` + strings.Repeat("]", 64), wantErr: ErrMalformed},
		{name: "1e400", doc: `{"n":1e400}`, wantErr: ErrMalformed},
		{name: "-1E+400 in an array", doc: `[0,-1E+400]`, wantErr: ErrMalformed},
		{name: "surrogate pair", doc: `["\ud83d\ude00", "\\ud800", "\u00e9\n"]`},
		{name: "lone high surrogate", doc: `{"a":"x\ud800"}`, wantErr: ErrMalformed},
		{name: "lone low surrogate in a key", doc: `{"\udc00":1}`, wantErr: ErrMalformed},
		{name: "high surrogate then an escape", doc: `["\ud800\n"]`, wantErr: ErrMalformed},
		{name: "two high surrogates", doc: `["\ud800\ud800\udc00"]`, wantErr: ErrMalformed},
		{name: "400 digits", doc: `[` + strings.Repeat("9", 400) + `]`, wantErr: ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !json.Valid([]byte(tt.doc)) {
				t.Fatalf("test document is not JSON: %s", tt.doc)
			}
			if err := checkStrict([]byte(tt.doc)); !errors.Is(err, tt.wantErr) {
				t.Fatalf("checkStrict = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

// FuzzCheckStrict checks checkStrict on every valid document against strictReference, an
// independent reading through json.Decoder's tokens and strings.EqualFold.
func FuzzCheckStrict(f *testing.F) {
	f.Add([]byte(`{"id":1,"a":[{"id":2},{"ID":3}],"b":{"\u0069d":1e400}}`))
	f.Add([]byte(`[[[[{"K":1,"\u212a":2}]]]]`))
	f.Add([]byte(`["\ud83d\ude00\\ud800","\udbff"]`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		if !json.Valid(doc) {
			return
		}
		got, want := checkStrict(doc), strictReference(doc)
		if (got == nil) != (want == nil) {
			t.Fatalf("checkStrict(%s) = %v, reference says %v", doc, got, want)
		}
		if got != nil && !errors.Is(got, ErrMalformed) {
			t.Fatalf("error %v is not ErrMalformed", got)
		}
	})
}

// escapes matches JSON escape sequences; outside strings valid JSON has no backslash, so
// scanning the whole document left to right finds exactly the strings' escapes.
var escapes = regexp.MustCompile(`\\(?:u([0-9a-fA-F]{4})|.)`)

func strictReference(doc []byte) error {
	pendingHigh := -1 // end of a high surrogate escape awaiting its low half
	for _, m := range escapes.FindAllSubmatchIndex(doc, -1) {
		var r uint64 = 0x20 // not a surrogate
		if m[2] >= 0 {
			r, _ = strconv.ParseUint(string(doc[m[2]:m[3]]), 16, 32)
		}
		high, low := r >= 0xD800 && r <= 0xDBFF, r >= 0xDC00 && r <= 0xDFFF
		switch {
		case pendingHigh >= 0 && low && m[0] == pendingHigh:
			pendingHigh = -1
		case pendingHigh >= 0, low:
			return fmt.Errorf("unpaired surrogate at %d", m[0])
		case high:
			pendingHigh = m[1]
		}
	}
	if pendingHigh >= 0 {
		return fmt.Errorf("unpaired surrogate at the end")
	}
	dec := json.NewDecoder(strings.NewReader(string(doc)))
	dec.UseNumber()
	type frame struct {
		object bool
		keys   []string
		keyNow bool // the next string token is a key
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object && top.keyNow {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:len(stack)-1]
				continue
			}
			k := tok.(string)
			for _, o := range top.keys {
				if strings.EqualFold(o, k) {
					return fmt.Errorf("duplicate %q", k)
				}
			}
			top.keys = append(top.keys, k)
			top.keyNow = false
			continue
		}
		if top != nil && top.object {
			top.keyNow = true
		}
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{', '[':
				stack = append(stack, &frame{object: v == '{', keyNow: v == '{'})
				if len(stack) > maxDepth {
					return fmt.Errorf("depth %d", len(stack))
				}
			case ']':
				stack = stack[:len(stack)-1]
			}
		case json.Number:
			if _, err := strconv.ParseFloat(string(v), 64); err != nil {
				return err
			}
		}
	}
}
