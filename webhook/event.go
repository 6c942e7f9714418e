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
