package webhook

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unicode"
	"unicode/utf8"
)

// maxDepth is how deeply arrays and objects may nest in a delivery. Real payloads nest a
// handful of levels; the limit keeps a body that encoding/json accepts (it allows 10,000)
// from reaching consumers whose parsers recurse with less room.
const maxDepth = 64

// manyKeys is the member count from which an object's keys are checked in a map rather
// than by comparing each new key with every earlier one, which a hostile body with
// thousands of keys would turn quadratic.
const manyKeys = 32

// checkStrict rejects what valid JSON may still carry that parsers disagree on, so that
// every reader of the stored event sees what the gateway saw:
//   - an object with two member names that are equal after unescaping, compared the way
//     encoding/json matches struct fields (Unicode simple case folding, so "id", "ID" and
//     "\u0069d" are one name): which of them a parser keeps differs from parser to parser;
//   - nesting deeper than maxDepth;
//   - a number beyond the range of a float64 (1e400): parsers read it as infinity, reject
//     it, or keep it exact;
//   - a string with an unpaired UTF-16 surrogate escape ("\ud800"): parsers replace it,
//     keep it, or reject it.
//
// b must be valid JSON (the caller has decoded it already). The error matches ErrMalformed.
func checkStrict(b []byte) error {
	s := strictScanner{b: b}
	_, err := s.value(skipSpace(b, 0), 1)
	return err
}

// strictScanner walks valid JSON once. The folded keys of the objects being walked are
// stacked in folded (bytes) and keys (their spans), so nested objects allocate nothing.
type strictScanner struct {
	b      []byte
	folded []byte
	keys   []span
}

type span struct{ start, end int }

func (s *strictScanner) value(i, depth int) (int, error) {
	if i >= len(s.b) {
		return i, nil
	}
	switch c := s.b[i]; {
	case c == '{':
		return s.object(i, depth)
	case c == '[':
		return s.array(i, depth)
	case c == '"':
		end := skipString(s.b, i)
		return end, checkSurrogates(s.b[i:end])
	case c == '-' || c >= '0' && c <= '9':
		end := skipValue(s.b, i)
		if err := checkNumber(s.b[i:end]); err != nil {
			return end, err
		}
		return end, nil
	default: // true, false, null
		return skipValue(s.b, i), nil
	}
}

func (s *strictScanner) array(i, depth int) (int, error) {
	if depth > maxDepth {
		return i, malformed("nested deeper than %d levels", maxDepth)
	}
	i = skipSpace(s.b, i+1)
	for i < len(s.b) && s.b[i] != ']' {
		var err error
		if i, err = s.element(i, depth+1); err != nil {
			return i, err
		}
	}
	return i + 1, nil
}

// element checks the value at b[i] and returns the index of what follows it and its comma.
func (s *strictScanner) element(i, depth int) (int, error) {
	i, err := s.value(i, depth)
	if err != nil {
		return i, err
	}
	i = skipSpace(s.b, i)
	if i < len(s.b) && s.b[i] == ',' {
		i = skipSpace(s.b, i+1)
	}
	return i, nil
}

func (s *strictScanner) object(i, depth int) (int, error) {
	if depth > maxDepth {
		return i, malformed("nested deeper than %d levels", maxDepth)
	}
	foldedBase, keysBase := len(s.folded), len(s.keys)
	defer func() { s.folded, s.keys = s.folded[:foldedBase], s.keys[:keysBase] }()
	var seen map[string]struct{} // from manyKeys members on
	i = skipSpace(s.b, i+1)
	for i < len(s.b) && s.b[i] != '}' {
		kStart := i
		i = skipString(s.b, i)
		if err := checkSurrogates(s.b[kStart:i]); err != nil {
			return i, err
		}
		start := len(s.folded)
		s.folded = appendFoldedKey(s.folded, s.b[kStart:i])
		k := s.folded[start:]
		switch {
		case seen != nil:
			if _, dup := seen[string(k)]; dup {
				return i, duplicateKey(s.b[kStart:i])
			}
			seen[string(k)] = struct{}{}
		default:
			for _, o := range s.keys[keysBase:] {
				if bytes.Equal(s.folded[o.start:o.end], k) {
					return i, duplicateKey(s.b[kStart:i])
				}
			}
			s.keys = append(s.keys, span{start, len(s.folded)})
			if len(s.keys)-keysBase == manyKeys {
				seen = make(map[string]struct{}, 2*manyKeys)
				for _, o := range s.keys[keysBase:] {
					seen[string(s.folded[o.start:o.end])] = struct{}{}
				}
			}
		}
		i = skipSpace(s.b, i)
		i = skipSpace(s.b, i+1) // ':'
		var err error
		if i, err = s.element(i, depth+1); err != nil {
			return i, err
		}
	}
	return i + 1, nil
}

func duplicateKey(quoted []byte) error {
	return malformed("duplicate key %s in one object", clip(quoted, 64))
}

// clip shortens text from the sender to at most n bytes and a mark, for an error message.
func clip(b []byte, n int) []byte {
	if len(b) <= n {
		return b
	}
	return append(b[:n:n], "…"...)
}

// appendFoldedKey appends the unescaped member name quoted with every rune replaced by
// the smallest rune of its simple case-folding orbit, which is how encoding/json decides
// that a name matches a field.
func appendFoldedKey(dst, quoted []byte) []byte {
	name := quoted[1 : len(quoted)-1]
	if bytes.IndexByte(name, '\\') >= 0 {
		var k string
		_ = json.Unmarshal(quoted, &k) // valid: the whole document was decoded
		name = []byte(k)
	}
	for len(name) > 0 {
		if c := name[0]; c < utf8.RuneSelf {
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			dst = append(dst, c)
			name = name[1:]
			continue
		}
		r, n := utf8.DecodeRune(name)
		dst = utf8.AppendRune(dst, foldRune(r))
		name = name[n:]
	}
	return dst
}

func foldRune(r rune) rune {
	for {
		r2 := unicode.SimpleFold(r)
		if r2 <= r {
			return r2
		}
		r = r2
	}
}

// checkNumber rejects a number no float64 can hold. Only an exponent or more than 300
// digits can take a number there, so the common case costs a scan of its bytes.
func checkNumber(num []byte) error {
	if len(num) <= 300 && bytes.IndexAny(num, "eE") < 0 {
		return nil
	}
	if _, err := strconv.ParseFloat(string(num), 64); err != nil {
		return malformed("number %s is out of range", clip(num, 40))
	}
	return nil
}

// checkSurrogates rejects a quoted string with a \uD800–\uDFFF escape that is not half of
// a high-then-low pair.
func checkSurrogates(quoted []byte) error {
	if bytes.IndexByte(quoted, '\\') < 0 {
		return nil
	}
	wantLow := false
	for i := 1; i < len(quoted)-1; i++ {
		if quoted[i] != '\\' {
			if wantLow {
				break
			}
			continue
		}
		i++
		if quoted[i] != 'u' {
			if wantLow {
				break
			}
			continue
		}
		r, err := strconv.ParseUint(string(quoted[i+1:i+5]), 16, 16)
		if err != nil {
			return malformed("string %s: bad \\u escape", clip(quoted, 40))
		}
		i += 4
		switch {
		case r >= 0xD800 && r < 0xDC00 && !wantLow:
			wantLow = true
		case r >= 0xDC00 && r < 0xE000 && wantLow:
			wantLow = false
		case r >= 0xD800 && r < 0xE000, wantLow:
			return unpairedSurrogate(quoted)
		}
	}
	if wantLow {
		return unpairedSurrogate(quoted)
	}
	return nil
}

func unpairedSurrogate(quoted []byte) error {
	return malformed("string %s has an unpaired UTF-16 surrogate", clip(quoted, 40))
}
