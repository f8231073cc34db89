package webhook

import (
	"bytes"
	"encoding/json"
	"testing"
)

func TestMemberValue(t *testing.T) {
	tests := []struct{ obj, want string }{
		{`{"id":42}`, `42`},
		{` { "a" : [1,{"id":2}], "id" : "x" } `, `"x"`},
		{`{"id":1,"id":{"n":[1,2,"}"]}}`, `{"n":[1,2,"}"]}`},
		{`{"\u0069d":7}`, `7`},
		{`{"ID":7}`, ``},
		{`{"a":"\"id\":3"}`, ``},
		{`{}`, ``},
		{`{"id":null}`, `null`},
		{`{"id":-1.5e3}`, `-1.5e3`},
	}
	for _, tt := range tests {
		if got := string(memberValue([]byte(tt.obj), "id")); got != tt.want {
			t.Errorf("memberValue(%s) = %q, want %q", tt.obj, got, tt.want)
		}
	}
}

// FuzzMemberValue checks memberValue against encoding/json on every valid object.
func FuzzMemberValue(f *testing.F) {
	f.Add([]byte(`{"id":42,"x":[1,{"id":2}],"id":"y"}`))
	f.Add([]byte(`{"\u0069d" : {"a":"\\"}}`))
	f.Fuzz(func(t *testing.T, obj []byte) {
		var m map[string]json.RawMessage
		if json.Unmarshal(obj, &m) != nil || m == nil {
			return
		}
		want := bytes.TrimSpace(m["id"])
		if got := memberValue(obj, "id"); !bytes.Equal(got, want) {
			t.Fatalf("memberValue(%s) = %q, encoding/json says %q", obj, got, want)
		}
	})
}
