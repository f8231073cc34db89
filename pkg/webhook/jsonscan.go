package webhook

import (
	"bytes"
	"encoding/json"
)

// memberValue returns the raw value of member key of the JSON object obj, as
// json.Unmarshal into a map[string]json.RawMessage would: keys compared exactly after
// unescaping, the last of duplicate keys wins, nil when absent. obj must be valid JSON (the
// caller's json.Unmarshal has already checked it); this saves decoding the whole object a
// second time just to find one member.
func memberValue(obj []byte, key string) []byte {
	i := skipSpace(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return nil
	}
	var found []byte
	i++
	for {
		i = skipSpace(obj, i)
		if i >= len(obj) || obj[i] == '}' {
			return found
		}
		if obj[i] == ',' {
			i = skipSpace(obj, i+1)
		}
		kStart := i
		i = skipString(obj, i)
		k := obj[kStart:i]
		i = skipSpace(obj, i)
		i = skipSpace(obj, i+1) // ':'
		vStart := i
		i = skipValue(obj, i)
		if keyEquals(k, key) {
			found = bytes.TrimSpace(obj[vStart:i])
		}
	}
}

func keyEquals(quoted []byte, key string) bool {
	if bytes.IndexByte(quoted, '\\') < 0 {
		return len(quoted) == len(key)+2 && string(quoted[1:len(quoted)-1]) == key
	}
	var k string
	return json.Unmarshal(quoted, &k) == nil && k == key
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index just past the string starting at b[i] ('"').
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return i
}

// skipValue returns the index just past the value starting at b[i].
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return i
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				i = skipString(b, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
		return i
	default: // number, true, false, null
		for i < len(b) && b[i] != ',' && b[i] != '}' && b[i] != ']' && b[i] != ' ' && b[i] != '\t' && b[i] != '\n' && b[i] != '\r' {
			i++
		}
		return i
	}
}
