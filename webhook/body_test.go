package webhook_test

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"

	"clerksync/webhook"
)

// TestReadBody: the body comes back whole up to the limit, one byte more is ErrBodyTooLarge,
// every growth of the buffer is reserved and counted, a refused reservation is ErrBodyBudget,
// and a reader's error comes back as it is, whether the bytes arrive at once or one by one.
func TestReadBody(t *testing.T) {
	t.Parallel()
	const limit = 20_000
	errBroken := errors.New("connection reset")
	tests := []struct {
		name     string
		body     int   // bytes the sender sends
		hint     int64 // length it announces
		budget   int64 // -1: no reserve
		brokenAt bool  // the reader fails after the body
		wantErr  error
	}{
		{name: "empty", body: 0, hint: 0, budget: -1},
		{name: "small, announced", body: 1200, hint: 1200, budget: -1},
		{name: "small, length unknown", body: 1200, hint: -1, budget: -1},
		{name: "announces more than it sends", body: 10, hint: limit, budget: -1},
		{name: "exactly the limit", body: limit, hint: -1, budget: -1},
		{name: "limit + 1", body: limit + 1, hint: -1, budget: -1, wantErr: webhook.ErrBodyTooLarge},
		{name: "limit + 1, announced as small", body: limit + 1, hint: 100, budget: -1, wantErr: webhook.ErrBodyTooLarge},
		{name: "reserved: empty", body: 0, hint: -1, budget: 0},
		{name: "reserved: small", body: 1200, hint: -1, budget: 2 * limit},
		{name: "reserved: exactly the limit", body: limit, hint: -1, budget: 2 * limit},
		{name: "reserved: limit + 1", body: limit + 1, hint: -1, budget: 2 * limit, wantErr: webhook.ErrBodyTooLarge},
		{name: "reserved: budget spent", body: 10_000, hint: -1, budget: 5000, wantErr: webhook.ErrBodyBudget},
		{name: "reader fails", body: 5000, hint: -1, budget: -1, brokenAt: true, wantErr: errBroken},
		{name: "reserved: reader fails", body: 5000, hint: -1, budget: 2 * limit, brokenAt: true, wantErr: errBroken},
	}
	for _, tt := range tests {
		for _, oneByOne := range []bool{false, true} {
			sent := bytes.Repeat([]byte("x"), tt.body)
			var r io.Reader = bytes.NewReader(sent)
			if tt.brokenAt {
				r = io.MultiReader(r, iotest.ErrReader(errBroken))
			}
			if oneByOne {
				r = iotest.OneByteReader(r)
			}
			var reserve func(int64) bool
			var granted int64
			if tt.budget >= 0 {
				reserve = func(n int64) bool {
					if granted+n > tt.budget {
						return false
					}
					granted += n
					return true
				}
			}
			got, reserved, err := webhook.ReadBody(r, tt.hint, limit, reserve)
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("%s (one byte a read: %v): ReadBody = %d bytes, %v; want %v", tt.name, oneByOne, len(got), err, tt.wantErr)
				continue
			}
			if reserved != granted {
				t.Errorf("%s (one byte a read: %v): ReadBody says it reserved %d bytes; reserve granted %d", tt.name, oneByOne, reserved, granted)
			}
			if int64(len(got)) > reserved && reserve != nil {
				t.Errorf("%s (one byte a read: %v): ReadBody holds %d bytes, reserved %d; want all of them reserved", tt.name, oneByOne, len(got), reserved)
			}
			if tt.wantErr == nil && reserved > 2*int64(len(got)) {
				t.Errorf("%s (one byte a read: %v): ReadBody reserved %d bytes for %d; want at most twice what arrived", tt.name, oneByOne, reserved, len(got))
			}
			if tt.wantErr == nil && !bytes.Equal(got, sent) {
				t.Errorf("%s (one byte a read: %v): ReadBody = %d bytes; want the %d sent", tt.name, oneByOne, len(got), len(sent))
			}
		}
	}
}
