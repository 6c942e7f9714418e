package webhook

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	svix "github.com/svix/svix-webhooks/go"
)

// ErrSignature means a request's signature headers are missing, malformed, outside Svix's
// five-minute tolerance, or match none of the configured secrets.
var ErrSignature = errors.New("invalid webhook signature")

// Verifier checks Svix signatures against one or more signing secrets, so that a secret can be
// rotated without downtime: during the rotation both the old and the new secret verify.
type Verifier struct {
	hooks []*svix.Webhook
}

// NewVerifier returns a Verifier for the given whsec_… secrets. It returns an error naming the
// offending secret's position when there is none, or one lacks the whsec_ prefix or is not
// valid base64.
func NewVerifier(secrets ...string) (*Verifier, error) {
	if len(secrets) == 0 {
		return nil, errors.New("no signing secret given")
	}
	v := &Verifier{}
	for i, s := range secrets {
		if !strings.HasPrefix(s, "whsec_") {
			return nil, fmt.Errorf("secret %d of %d does not start with whsec_", i+1, len(secrets))
		}
		wh, err := svix.NewWebhook(s)
		if err != nil {
			return nil, fmt.Errorf("secret %d of %d is not a valid whsec_ secret (its part after whsec_ must be base64): %v", i+1, len(secrets), err)
		}
		v.hooks = append(v.hooks, wh)
	}
	return v, nil
}

// Verify checks body against the signature headers (svix-id, svix-timestamp, svix-signature,
// or the webhook-* set). It returns nil when any configured secret verifies it, and otherwise
// an error wrapping ErrSignature that says why the first secret refused it.
func (v *Verifier) Verify(body []byte, h http.Header) error {
	var first error
	for _, wh := range v.hooks {
		err := wh.Verify(body, h)
		if err == nil {
			return nil
		}
		if first == nil {
			first = err
		}
	}
	return fmt.Errorf("%w: %v", ErrSignature, first)
}

// The signature headers, spelled canonically: http.Header.Get then finds them without first
// rewriting the name (an allocation per look-up).
const (
	headerSvixID        = "Svix-Id"
	headerSvixTimestamp = "Svix-Timestamp"
	headerSvixSignature = "Svix-Signature"
	headerWebhookID     = "Webhook-Id"
	headerWebhookTS     = "Webhook-Timestamp"
)

// MessageID returns the delivery's id the way the Svix library picks it: svix-id when the
// whole svix-* header set is present, else webhook-id. Svix keeps it across retries.
func MessageID(h http.Header) string {
	id, _ := messageHeaders(h)
	return id
}

// messageTimestamp returns the signature's timestamp header from the same set as MessageID.
func messageTimestamp(h http.Header) string {
	_, ts := messageHeaders(h)
	return ts
}

// messageHeaders returns the message id and timestamp headers of the set MessageID picks.
func messageHeaders(h http.Header) (id, timestamp string) {
	id, timestamp = h.Get(headerSvixID), h.Get(headerSvixTimestamp)
	if id != "" && timestamp != "" && h.Get(headerSvixSignature) != "" {
		return id, timestamp
	}
	return h.Get(headerWebhookID), h.Get(headerWebhookTS)
}
