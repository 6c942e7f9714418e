package webhook

import "encoding/json"

// The one reader of Clerk's envelope and of its data's id. encoding/json reads a body twice to
// decode it (a validity scan, then the decode), both through its byte-at-a-time state machine,
// and that was the largest cost of the bridge after the network: scanEnvelope validates the
// body and picks out the three fields in one pass, and topLevelID finds the data's id with the
// same scanners. scanEnvelope only has to be right when it says yes: on anything unusual, and
// on every invalid body, it gives up and decodeEvent decodes with encoding/json, so that every
// refusal and its message stay encoding/json's. FuzzScanEnvelope and FuzzTopLevelID hold both
// to encoding/json.

// maxScanDepth bounds the nesting scanEnvelope follows; deeper bodies go to encoding/json
// (whose own limit is 10,000).
const maxScanDepth = 512

// maxJSONDepth is encoding/json's nesting limit: no JSON it accepted nests deeper.
const maxJSONDepth = 10_000

// rawEnvelope is the envelope's fields as raw JSON, slices of the body.
type rawEnvelope struct {
	typ       []byte // the type string's contents, without quotes (it had no escapes)
	timestamp []byte // the timestamp number's literal; nil when absent
	data      []byte // the data value (any JSON value); nil when absent
}

// scanEnvelope reads body, a JSON object, in one pass. It returns ok only when body is valid
// JSON (RFC 8259, as encoding/json accepts it, body being valid UTF-8) and json.Unmarshal into
// envelope would give exactly the fields it returns: the object's keys that match "type",
// "timestamp" or "data" are spelled exactly so (encoding/json also matches other cases and
// Unicode folds: those go to it), each "type" is a string without escapes, each "timestamp" a
// number, and the last of each wins, as with encoding/json.
func scanEnvelope(body []byte) (env rawEnvelope, ok bool) {
	i := skipSpace(body, 0)
	if i >= len(body) || body[i] != '{' {
		return env, false
	}
	i = skipSpace(body, i+1)
	if i < len(body) && body[i] == '}' {
		i++
	} else {
		for {
			// A key.
			if i >= len(body) || body[i] != '"' {
				return env, false
			}
			end, plain := scanString(body, i)
			if end < 0 {
				return env, false
			}
			key := body[i+1 : end-1]
			field := 0
			switch {
			case !plain:
				return env, false // an escaped key could spell a field's name
			case string(key) == "type":
				field = 1
			case string(key) == "timestamp":
				field = 2
			case string(key) == "data":
				field = 3
			case foldsToField(key):
				return env, false
			}
			i = skipSpace(body, end)
			if i >= len(body) || body[i] != ':' {
				return env, false
			}
			i = skipSpace(body, i+1)
			// Its value.
			start := i
			switch field {
			case 1:
				if i >= len(body) || body[i] != '"' {
					return env, false
				}
				end, plain := scanString(body, i)
				if end < 0 || !plain {
					return env, false
				}
				env.typ = body[i+1 : end-1]
				i = end
			case 2:
				end := scanNumber(body, i)
				if end < 0 {
					return env, false
				}
				env.timestamp = body[start:end]
				i = end
			default:
				end := scanValue(body, i, maxScanDepth-1)
				if end < 0 {
					return env, false
				}
				if field == 3 {
					env.data = body[start:end]
				}
				i = end
			}
			i = skipSpace(body, i)
			if i >= len(body) {
				return env, false
			}
			if body[i] == '}' {
				i++
				break
			}
			if body[i] != ',' {
				return env, false
			}
			i = skipSpace(body, i+1)
		}
	}
	if skipSpace(body, i) != len(body) {
		return env, false
	}
	return env, true
}

// foldsToField reports whether key, which is not exactly one of the envelope's field names,
// could still match one in encoding/json (which matches keys case-insensitively, with Unicode
// simple folding): an ASCII key equal to a name but for case, or any key with non-ASCII bytes.
func foldsToField(key []byte) bool {
	for _, c := range key {
		if c >= 0x80 {
			return true
		}
	}
	switch len(key) {
	case len("type"):
		return equalFoldASCII(key, "type") || equalFoldASCII(key, "data")
	case len("timestamp"):
		return equalFoldASCII(key, "timestamp")
	}
	return false
}

func equalFoldASCII(b []byte, s string) bool {
	for i := range len(s) {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// scanValue returns the index after the JSON value starting at body[i], or -1 when there is no
// valid value there, or when it nests more than depth levels of objects and arrays.
func scanValue(body []byte, i, depth int) int {
	if i >= len(body) {
		return -1
	}
	switch c := body[i]; {
	case c == '"':
		end, _ := scanString(body, i)
		return end
	case c == '{':
		if depth <= 0 {
			return -1
		}
		i = skipSpace(body, i+1)
		if i < len(body) && body[i] == '}' {
			return i + 1
		}
		for {
			if i >= len(body) || body[i] != '"' {
				return -1
			}
			if i, _ = scanString(body, i); i < 0 {
				return -1
			}
			i = skipSpace(body, i)
			if i >= len(body) || body[i] != ':' {
				return -1
			}
			if i = scanValue(body, skipSpace(body, i+1), depth-1); i < 0 {
				return -1
			}
			i = skipSpace(body, i)
			if i >= len(body) {
				return -1
			}
			if body[i] == '}' {
				return i + 1
			}
			if body[i] != ',' {
				return -1
			}
			i = skipSpace(body, i+1)
		}
	case c == '[':
		if depth <= 0 {
			return -1
		}
		i = skipSpace(body, i+1)
		if i < len(body) && body[i] == ']' {
			return i + 1
		}
		for {
			if i = scanValue(body, i, depth-1); i < 0 {
				return -1
			}
			i = skipSpace(body, i)
			if i >= len(body) {
				return -1
			}
			if body[i] == ']' {
				return i + 1
			}
			if body[i] != ',' {
				return -1
			}
			i = skipSpace(body, i+1)
		}
	case c == '-' || ('0' <= c && c <= '9'):
		return scanNumber(body, i)
	case c == 't':
		return scanLiteral(body, i, "true")
	case c == 'f':
		return scanLiteral(body, i, "false")
	case c == 'n':
		return scanLiteral(body, i, "null")
	}
	return -1
}

func scanLiteral(body []byte, i int, lit string) int {
	if len(body)-i < len(lit) || string(body[i:i+len(lit)]) != lit {
		return -1
	}
	return i + len(lit)
}

// scanNumber returns the index after the JSON number starting at body[i], or -1 when there is
// none: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func scanNumber(body []byte, i int) int {
	if i < len(body) && body[i] == '-' {
		i++
	}
	switch {
	case i >= len(body):
		return -1
	case body[i] == '0':
		i++
	case '1' <= body[i] && body[i] <= '9':
		i = skipDigits(body, i+1)
	default:
		return -1
	}
	if i < len(body) && body[i] == '.' {
		j := skipDigits(body, i+1)
		if j == i+1 {
			return -1
		}
		i = j
	}
	if i < len(body) && (body[i] == 'e' || body[i] == 'E') {
		i++
		if i < len(body) && (body[i] == '+' || body[i] == '-') {
			i++
		}
		j := skipDigits(body, i)
		if j == i {
			return -1
		}
		i = j
	}
	return i
}

func skipDigits(body []byte, i int) int {
	for i < len(body) && '0' <= body[i] && body[i] <= '9' {
		i++
	}
	return i
}

// scanString returns the index after the JSON string starting at body[i] == '"', or -1 when
// it is not a valid string (unterminated, a control character, a bad escape); plain is false
// when it has escapes. Bytes from 0x80 up are taken as they are: the caller checked that the
// body is valid UTF-8.
func scanString(body []byte, i int) (end int, plain bool) {
	plain = true
	for i++; i < len(body); i++ {
		c := body[i]
		switch {
		case c == '"':
			return i + 1, plain
		case c < 0x20:
			return -1, false
		case c == '\\':
			plain = false
			i++
			if i >= len(body) {
				return -1, false
			}
			switch body[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if len(body)-i <= 4 {
					return -1, false
				}
				for _, h := range body[i+1 : i+5] {
					if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
						return -1, false
					}
				}
				i += 4
			default:
				return -1, false
			}
		}
	}
	return -1, false
}

// topLevelID returns the string value of the first "id" key (spelled exactly so) of the JSON
// object data, which scanEnvelope or encoding/json has validated, or "" when it has none. It
// is for logs only, and reads data once without decoding it: a second full decode of every
// payload cost the bridge a fifth of its time.
func topLevelID(data []byte) string {
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return ""
	}
	for i = skipSpace(data, i+1); i < len(data) && data[i] == '"'; i = skipSpace(data, i+1) {
		end, _ := scanString(data, i)
		if end < 0 {
			return ""
		}
		key := data[i+1 : end-1]
		i = skipSpace(data, end)
		if i >= len(data) || data[i] != ':' {
			return ""
		}
		start := skipSpace(data, i+1)
		if string(key) == "id" {
			if start >= len(data) || data[start] != '"' {
				return ""
			}
			end, _ := scanString(data, start)
			var id string
			if end < 0 || json.Unmarshal(data[start:end], &id) != nil {
				return ""
			}
			return id
		}
		if i = scanValue(data, start, maxJSONDepth); i < 0 {
			return ""
		}
		if i = skipSpace(data, i); i >= len(data) || data[i] != ',' {
			return ""
		}
	}
	return ""
}

// skipSpace returns the index of the first byte from b[i] on that is not JSON white space.
func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}
