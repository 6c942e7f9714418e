package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// ErrNotClerkEvent means a verified body is not a Clerk event envelope: not valid UTF-8, not a
// JSON object, without a usable type, or without an object as data.
var ErrNotClerkEvent = errors.New("body is not a Clerk event")

// maxTypeLen bounds the length of an event type.
const maxTypeLen = 128

// secondsCutoff tells second timestamps from millisecond ones: 1e11 seconds is the year 5138,
// 1e11 milliseconds is 1973.
const secondsCutoff = 100_000_000_000

// envelope is the part of Clerk's webhook envelope the bridge reads.
type envelope struct {
	Type      string          `json:"type"`
	Timestamp json.Number     `json:"timestamp"`
	Data      json.RawMessage `json:"data"`
}

// eventData carries Clerk's data to Inngest unchanged: it marshals to the raw JSON it holds, so
// nothing is lost or reformatted by a decode and re-encode (encoding/json only compacts it and
// escapes &, < and > as \u0026, \u003c and \u003e, which is the same JSON value).
type eventData struct {
	raw json.RawMessage
}

// MarshalJSON returns the raw data.
func (d eventData) MarshalJSON() ([]byte, error) { return d.raw, nil }

// clerkEvent is a decoded, checked envelope.
type clerkEvent struct {
	typ    string
	tsMS   int64
	data   json.RawMessage
	userID string
}

// decodeEvent decodes a verified body. sigTS is the signature's timestamp header (seconds),
// used when the envelope has no timestamp. It returns an error wrapping ErrNotClerkEvent when
// the body is not a Clerk event.
func decodeEvent(body []byte, sigTS string) (clerkEvent, error) {
	if !utf8.Valid(body) {
		return clerkEvent{}, fmt.Errorf("%w: the body is not valid UTF-8", ErrNotClerkEvent)
	}
	var env envelope
	if raw, ok := scanEnvelope(body); ok {
		// The same fields as json.Unmarshal's below, read in one pass (scan.go).
		env = envelope{Type: string(raw.typ), Timestamp: json.Number(raw.timestamp), Data: raw.data}
	} else if err := json.Unmarshal(body, &env); err != nil { // also refuses trailing data
		return clerkEvent{}, fmt.Errorf("%w: invalid JSON: %v", ErrNotClerkEvent, err)
	}
	if !validType(env.Type) {
		return clerkEvent{}, fmt.Errorf("%w: missing or invalid \"type\"", ErrNotClerkEvent)
	}
	data := bytes.TrimSpace(env.Data)
	if len(data) == 0 || data[0] != '{' {
		return clerkEvent{}, fmt.Errorf("%w: \"data\" is missing or not an object", ErrNotClerkEvent)
	}
	ts, err := millis(env.Timestamp, sigTS)
	if err != nil {
		return clerkEvent{}, err
	}
	return clerkEvent{typ: env.Type, tsMS: ts, data: data, userID: topLevelID(data)}, nil
}

// topLevelID returns the string value of the "id" key of the JSON object data (already
// validated), or "" when it has none. It is for logs only, and reads data once without
// decoding it: a second full decode of every payload cost the bridge a fifth of its time.
func topLevelID(b []byte) string {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return ""
	}
	i++
	for {
		i = skipSpace(b, i)
		if i >= len(b) || b[i] != '"' {
			return ""
		}
		end := skipString(b, i)
		key := b[i+1 : max(i+1, end-1)]
		i = skipSpace(b, end)
		if i >= len(b) || b[i] != ':' {
			return ""
		}
		i = skipSpace(b, i+1)
		if i >= len(b) {
			return ""
		}
		if string(key) == "id" {
			if b[i] != '"' {
				return ""
			}
			end := skipString(b, i)
			var id string
			if json.Unmarshal(b[i:end], &id) != nil {
				return ""
			}
			return id
		}
		i = skipSpace(b, skipValue(b, i))
		if i >= len(b) || b[i] != ',' {
			return ""
		}
		i++
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string starting at b[i] == '"'.
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(b)
}

// skipValue returns the index after the JSON value starting at b[i].
func skipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = skipString(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return len(b)
	}
	for i < len(b) && b[i] != ',' && b[i] != '}' && b[i] != ']' && b[i] != ' ' && b[i] != '\n' && b[i] != '\t' && b[i] != '\r' {
		i++
	}
	return i
}

// validType accepts Clerk's event types, such as user.created or organizationMembership.deleted.
func validType(t string) bool {
	if t == "" || len(t) > maxTypeLen {
		return false
	}
	for _, r := range t {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
		default:
			return false
		}
	}
	return true
}

// millis normalises Clerk's envelope timestamp to Unix milliseconds: Clerk sends seconds in
// some payloads and milliseconds in others. An absent timestamp falls back to the signature's
// timestamp header (seconds).
func millis(ts json.Number, sigTS string) (int64, error) {
	s := ts.String()
	if s == "" {
		s = sigTS
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f <= 0 || f > 1e15 {
		return 0, fmt.Errorf("%w: \"timestamp\" %q is not a Unix time", ErrNotClerkEvent, ts.String())
	}
	if f < secondsCutoff {
		f *= 1000
	}
	return int64(f), nil
}
