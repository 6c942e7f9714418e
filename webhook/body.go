package webhook

import (
	"errors"
	"io"
)

var (
	// ErrBodyTooLarge means a body is longer than the limit ReadBody was given.
	ErrBodyTooLarge = errors.New("request body too large")
	// ErrBodyBudget means ReadBody's reserve refused a growth of its buffer.
	ErrBodyBudget = errors.New("too many request bytes in flight")
)

// scratchBytes is the size of the buffer, never reserved, that a read lands in while the body's
// buffer is full, and the largest that buffer starts at.
const scratchBytes = 4 << 10

// ReadBody reads r whole, at most limit bytes, into a buffer that grows as bytes arrive, so
// that what it holds follows what the sender sent, not what it announced (limit must be below
// math.MaxInt64). While the buffer is
// full, the next read lands in a scratch of 4 KiB; the buffer then grows to hold it (doubling,
// never past limit+1 bytes), each growth first reserved through reserve, when it is not nil,
// without waiting.
//
// The buffer starts empty, so that a sender that has sent nothing holds nothing. With reserve
// nil there is nothing to hold, and it starts at sizeHint+1 bytes instead (sizeHint being the
// length the sender announced, -1 when unknown; at most 4 KiB, at most limit+1): room for a
// small body and for the read that reports its end, which then needs no scratch.
//
// It returns what it read and how many bytes it reserved, which the caller releases, also on
// error. The error wraps ErrBodyTooLarge when r holds more than limit bytes, ErrBodyBudget
// when reserve refused a growth, or is the reader's.
func ReadBody(r io.Reader, sizeHint, limit int64, reserve func(n int64) bool) (body []byte, reserved int64, err error) {
	var buf, scratch []byte
	if reserve == nil {
		size := int64(scratchBytes)
		if sizeHint >= 0 && sizeHint+1 < size {
			size = sizeHint + 1
		}
		buf = make([]byte, 0, min(size, limit+1))
	}
	for {
		var n int
		if len(buf) < cap(buf) {
			n, err = r.Read(buf[len(buf):cap(buf)])
			buf = buf[:len(buf)+n]
		} else {
			if scratch == nil {
				scratch = make([]byte, scratchBytes)
			}
			n, err = r.Read(scratch)
			if n > 0 {
				need := int64(len(buf) + n)
				if need > limit {
					return buf, reserved, ErrBodyTooLarge
				}
				size := min(max(need, 2*int64(cap(buf))), limit+1)
				if reserve != nil {
					if !reserve(size - int64(cap(buf))) {
						return buf, reserved, ErrBodyBudget
					}
					reserved += size - int64(cap(buf))
				}
				grown := make([]byte, len(buf), size)
				copy(grown, buf)
				buf = append(grown, scratch[:n]...)
			}
		}
		if int64(len(buf)) > limit {
			return buf, reserved, ErrBodyTooLarge
		}
		if err == io.EOF {
			return buf, reserved, nil
		}
		if err != nil {
			return buf, reserved, err
		}
	}
}
