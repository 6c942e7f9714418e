package webhook

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// checkScan fails t when scanEnvelope accepts body but json.Unmarshal refuses it or decodes
// other fields. It returns whether scanEnvelope accepted it.
func checkScan(t *testing.T, body []byte) bool {
	t.Helper()
	if !utf8.Valid(body) {
		return false // decodeEvent refuses it before
	}
	raw, ok := scanEnvelope(body)
	var env envelope
	err := json.Unmarshal(body, &env)
	if !ok {
		return false
	}
	if err != nil {
		t.Fatalf("scanEnvelope accepted %q; json.Unmarshal refuses it: %v", body, err)
	}
	if !json.Valid(body) {
		t.Fatalf("scanEnvelope accepted invalid JSON %q", body)
	}
	if string(raw.typ) != env.Type || string(raw.timestamp) != env.Timestamp.String() || !bytes.Equal(raw.data, env.Data) {
		t.Fatalf("scanEnvelope(%q) = type %q, timestamp %q, data %q; json.Unmarshal: %q, %q, %q",
			body, raw.typ, raw.timestamp, raw.data, env.Type, env.Timestamp, env.Data)
	}
	return true
}

func TestScanEnvelope(t *testing.T) {
	t.Parallel()
	accepted := []string{
		`{"type":"user.created","timestamp":1716883200,"data":{"id":"user_1"}}`,
		" \t\r\n{ \"data\" : { \"id\" : \"user_1\" , \"a\" : [ 1 , -2.5e+3 , true , false , null , \"\\u00e9\\n\" ] } , \"type\" : \"x\" } \n",
		`{"type":"a","type":"b","data":{},"data":{"x":1},"timestamp":1,"timestamp":2.5}`,
		`{}`,
		`{"object":"event","data":{"id":"user_é","nested":{"deep":[[[{}]]]}},"type":"user.updated"}`,
		`{"Object":"event","types":"x","data_":1,"stamp":2,"type":"user.deleted","data":{"id":"u"}}`,
		`{"timestamp":0,"type":"t","data":{"n":-0.0e-0}}`,
		`{"data":` + strings.Repeat("[", maxScanDepth-1) + strings.Repeat("]", maxScanDepth-1) + `}`,
	}
	for _, b := range accepted {
		if !checkScan(t, []byte(b)) {
			t.Errorf("scanEnvelope(%q) refused; want it read in one pass", b)
		}
	}
	// Refused, so that encoding/json decides (and words the error).
	refused := []string{
		``, ` `, `[]`, `null`, `"x"`, `{`, `{"type":"a"`, `{"type":"a",}`, `{"type":"a"}x`, `{"type":"a"} {}`,
		`{"Type":"user.created","data":{}}`, `{"TIMESTAMP":1}`, `{"DATA":{}}`, `{"tYpE":"a"}`,
		`{"t\u0079pe":"a"}`, `{"timeſtamp":1}`, `{"type":"user\u002ecreated"}`, `{"type":1}`, `{"type":null}`,
		`{"timestamp":"1716883200"}`, `{"timestamp":null}`, `{"timestamp":01}`, `{"timestamp":1.}`, `{"timestamp":.5}`,
		`{"timestamp":1e}`, `{"timestamp":-}`, `{"timestamp":+1}`, `{"data":{"a":01}}`, `{"data":[1,]}`, `{"data":{"a":1,}}`,
		`{"data":{"a" 1}}`, `{"data":tru}`, `{"data":nul}`, `{"data":"\x01"}`, `{"data":"\u12"}`, `{"data":"\q"}`,
		`{"data":"abc}`, `{'type':'a'}`, `{"a":1 "b":2}`, `{"data":{"a":[1 2]}}`, "{\"data\":\"tab\there\"}",
		`{"data":` + strings.Repeat("[", maxScanDepth) + strings.Repeat("]", maxScanDepth) + `}`,
		`{"data":` + strings.Repeat("[", maxScanDepth+5) + strings.Repeat("]", maxScanDepth+5) + `}`,
	}
	for _, b := range refused {
		if checkScan(t, []byte(b)) {
			t.Errorf("scanEnvelope(%q) accepted; want it left to encoding/json", b)
		}
	}
}

// TestScanEnvelope_ClerkExamples: every example payload is read in one pass.
func TestScanEnvelope_ClerkExamples(t *testing.T) {
	t.Parallel()
	files, _ := filepath.Glob("../examples/*.json")
	if len(files) == 0 {
		t.Fatal("no ../examples/*.json: the repository's example payloads are missing")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !checkScan(t, b) {
			t.Errorf("%s: scanEnvelope refused it; want Clerk's payloads read in one pass", f)
		}
	}
}

// FuzzScanEnvelope: whatever scanEnvelope accepts, json.Unmarshal accepts and decodes to the
// same fields.
func FuzzScanEnvelope(f *testing.F) {
	for _, s := range []string{
		`{"type":"user.created","timestamp":1716883200,"data":{"id":"user_1","a":[1,2.5e3,true,null,"\u00e9"]}}`,
		`{"data":{},"type":"x","timestamp":1.5}`, `{"Type":"x"}`, `{"type":"a","type":1}`, `[]`, `{"data":"\"\\"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) { checkScan(t, body) })
}

// TestForwardedResponse: the hand-built answer is Response's JSON, whatever the id.
func TestForwardedResponse(t *testing.T) {
	t.Parallel()
	for _, id := range []string{"clerk-msg_2ZKXm0bXx0bmzY1jwbJqQ7Ox8Xf", "", "clerk-a\"b\\c", "clerk-<&>", "clerk-é", "clerk-\x01\x7f", "clerk-\u2028"} {
		want, _ := json.Marshal(Response{Status: "forwarded", EventID: id})
		if id == "" {
			want = []byte(`{"status":"forwarded","event_id":""}`)
		}
		if got := forwardedResponse(id); string(got) != string(want) {
			t.Errorf("forwardedResponse(%q) = %s; want %s", id, got, want)
		}
	}
}

func TestTopLevelID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		data, want string
	}{
		{`{"id":"user_1"}`, "user_1"},
		{` { "object" : "user" , "id" : "user_2" } `, "user_2"},
		{`{"a":{"id":"nested"},"b":["id","x"],"c":"\"id\":","id":"user_3"}`, "user_3"},
		{`{"n":1.5e3,"t":true,"z":null,"id":"user_4","id2":"x"}`, "user_4"},
		{`{"id":"us\u0065r_5"}`, "user_5"},
		{`{"id":"user_6","id":"user_7"}`, "user_6"},
		{`{"ID":"user_8"}`, ""},
		{`{"a":"\\","b":"}","id":"user_9"}`, "user_9"},
		{`{"deep":` + strings.Repeat("[", 2*maxScanDepth) + strings.Repeat("]", 2*maxScanDepth) + `,"id":"user_10"}`, "user_10"},
		{`{"id":7}`, ""},
		{`{"id":null}`, ""},
		{`{"email_addresses":[{"id":"idn_1"}]}`, ""},
		{`{}`, ""},
	}
	for _, tt := range tests {
		if got := topLevelID([]byte(tt.data)); got != tt.want {
			t.Errorf("topLevelID(%.80s) = %q; want %q", tt.data, got, tt.want)
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
	f.Add([]byte("{\"id\":\"\xff\"}")) // encoding/json turns invalid UTF-8 into U+FFFD
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
