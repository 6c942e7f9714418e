package webhook

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

func TestTopLevelID(t *testing.T) {
	tests := []struct {
		data, want string
	}{
		{`{"id":"user_1"}`, "user_1"},
		{` { "object" : "user" , "id" : "user_2" } `, "user_2"},
		{`{"a":{"id":"nested"},"b":["id","x"],"c":"\"id\":","id":"user_3"}`, "user_3"},
		{`{"n":1.5e3,"t":true,"z":null,"id":"user_4","id2":"x"}`, "user_4"},
		{`{"id":"us\u0065r_5"}`, "user_5"},
		{`{"id":7}`, ""},
		{`{"email_addresses":[{"id":"idn_1"}]}`, ""},
		{`{}`, ""},
	}
	for _, tt := range tests {
		if got := topLevelID([]byte(tt.data)); got != tt.want {
			t.Errorf("topLevelID(%s) = %q; want %q", tt.data, got, tt.want)
		}
	}
}

// FuzzTopLevelID: on any valid JSON object without duplicate keys, the scanner agrees with
// encoding/json; on anything, it does not panic.
func FuzzTopLevelID(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("..", "testdata", "clerk-examples", "*.json"))
	for _, file := range files {
		b, _ := os.ReadFile(file)
		var env struct {
			Data json.RawMessage `json:"data"`
		}
		_ = json.Unmarshal(b, &env)
		f.Add([]byte(env.Data))
	}
	f.Add([]byte(`{"a":"\\","id":"x"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		got := topLevelID(data)
		var m map[string]json.RawMessage
		if json.Unmarshal(data, &m) != nil {
			return
		}
		var want string
		_ = json.Unmarshal(m["id"], &want)
		if countKeys(data) != len(m) {
			return // duplicate keys: encoding/json keeps the last, the scanner the first
		}
		if got != want {
			t.Fatalf("topLevelID(%s) = %q; encoding/json says %q", data, got, want)
		}
	})
}

// countKeys counts the top-level keys of a JSON object.
func countKeys(data []byte) int {
	dec := json.NewDecoder(bytes.NewReader(data))
	if _, err := dec.Token(); err != nil {
		return -1
	}
	n := 0
	for dec.More() {
		if _, err := dec.Token(); err != nil {
			return -1
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return -1
		}
		n++
	}
	return n
}
