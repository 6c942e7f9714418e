package clerk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	sdk "github.com/clerk/clerk-sdk-go/v2"
	"github.com/clerk/clerk-sdk-go/v2/jwks"
	"github.com/clerk/clerk-sdk-go/v2/organization"
	"github.com/clerk/clerk-sdk-go/v2/organizationmembership"
	"github.com/clerk/clerk-sdk-go/v2/user"
)

// MaxPageSize is the largest page Clerk's list endpoints serve (GET /v1/users,
// /v1/organizations, /v1/organizations/{id}/memberships: limit 1 to 500).
const MaxPageSize = 500

// Errors of the Backend API client.
var (
	// ErrUserNotFound means Clerk answered 404 for the user: it does not exist (any more).
	ErrUserNotFound = errors.New("clerk: user not found")
	// ErrRateLimited means Clerk answered 429 more often, or asked to wait longer, than the
	// client is configured to put up with. Retrying later succeeds once the limit has passed.
	ErrRateLimited = errors.New("clerk: rate limited")
	// ErrKeyRefused means Clerk answered 401 Unauthorized: it does not accept the secret key
	// (wrong, revoked, or of a deleted instance). Every call fails the same way until the
	// client is given a key Clerk accepts; retrying does not help.
	ErrKeyRefused = errors.New("clerk: the secret key was refused (401 Unauthorized)")
	// ErrOtherUser means Clerk's answer to GET /v1/users/{id} carries another user's id than
	// the one asked for (something between the service and Clerk mixed up answers); nothing
	// of that answer may be written as the user asked for.
	ErrOtherUser = errors.New("clerk: the answer is another user than the one asked for")
)

// RateLimitedError is a 429 answer from Clerk; RetryAfter is the wait its Retry-After header
// asked for (zero when the header was missing or unreadable). With Share set, it is the
// client's own limit (APIConfig.RateLimit) instead: the request was not sent, because its
// share frees up only after RetryAfter, past the call's deadline. It matches ErrRateLimited.
type RateLimitedError struct {
	RetryAfter time.Duration
	Share      bool
}

// Error says that Clerk answered 429, or that the client's share is used up, and how long to
// wait.
func (e *RateLimitedError) Error() string {
	if e.Share {
		return fmt.Sprintf("clerk: this client's share of the rate limit is used up for %s, past the deadline", e.RetryAfter.Round(time.Millisecond))
	}
	return fmt.Sprintf("clerk: 429 Too Many Requests (Retry-After %s)", e.RetryAfter)
}

// Is makes errors.Is(err, ErrRateLimited) true for a RateLimitedError.
func (e *RateLimitedError) Is(target error) bool { return target == ErrRateLimited }

// APIConfig says how to reach Clerk's Backend API.
type APIConfig struct {
	// SecretKey is the instance's secret key (sk_test_... or sk_live_...).
	SecretKey string
	// APIURL is the Backend API's base URL; empty means https://api.clerk.com/v1.
	APIURL string
	// HTTPClient makes the requests; nil means a client with a 30 s timeout per request.
	HTTPClient *http.Client
	// MaxRateLimitRetries bounds how often one request is retried after a 429 (default 5).
	MaxRateLimitRetries int
	// MaxRetryAfter is the longest Retry-After the client waits for (default 60 s); a longer
	// one fails the request with ErrRateLimited, so that the caller can come back later. A
	// call also waits no longer than half the time left before its context's deadline, nor
	// than the limit its context carries (WithMaxRetryWait; a reconciliation step sets a few
	// seconds).
	MaxRetryAfter time.Duration
	// RateLimit is how many requests this client sends Clerk per RateWindow at most (its share
	// of the instance's limit); 0 means no limit of its own. Every request counts but GET
	// /v1/jwks, as for Clerk. A request over it waits until it fits, as long as its context lets it (see rateGate.acquire).
	RateLimit int
	// RateWindow is the window RateLimit counts in; 0 means RateWindow (10 s, Clerk's).
	RateWindow time.Duration
}

// UserPage is one page of Clerk's user list. Unlike the organizations' and memberships' pages
// it carries no total: Clerk answers the list with the users alone and counts them in another
// request (CountUsers), which a page does not make.
type UserPage struct {
	// Users are the page's users, mapped to the fields the service keeps.
	Users []User
}

// API reads users, organizations and memberships, and the instance they belong to, from
// Clerk's Backend API through the official SDK, with its own per-client configuration (no
// package-level key). A 429 answer is retried after the delay its Retry-After header asks
// for, a bounded number of times, when that delay fits (see APIConfig.MaxRetryAfter);
// otherwise the call fails at once with a *RateLimitedError saying how long Clerk asked to
// wait. Every call fails with an error wrapping ErrKeyRefused when Clerk answers 401 (the
// secret key is wrong or revoked).
type API struct {
	users   *user.Client
	orgs    *organization.Client
	members *organizationmembership.Client
	jwks    *jwks.Client
	cfg     APIConfig
	logger  *slog.Logger
}

// NewAPI returns a client for the Backend API described by cfg, logging its retries to
// logger. It cannot fail: a wrong key or URL shows in the first call's error.
func NewAPI(cfg APIConfig, logger *slog.Logger) *API {
	if cfg.APIURL == "" {
		cfg.APIURL = sdk.APIURL
	}
	if cfg.MaxRateLimitRetries <= 0 {
		cfg.MaxRateLimitRetries = 5
	}
	if cfg.MaxRetryAfter <= 0 {
		cfg.MaxRetryAfter = time.Minute
	}
	hc := &http.Client{Timeout: 30 * time.Second}
	if cfg.HTTPClient != nil {
		c := *cfg.HTTPClient
		hc = &c
	}
	base := hc.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	t := rateLimitTransport{base: base}
	if cfg.RateLimit > 0 {
		if cfg.RateWindow <= 0 {
			cfg.RateWindow = RateWindow
		}
		t.gate = newRateGate(cfg.RateLimit, cfg.RateWindow)
	}
	hc.Transport = t
	url, key := strings.TrimRight(cfg.APIURL, "/"), cfg.SecretKey
	backend := &sdk.ClientConfig{BackendConfig: sdk.BackendConfig{
		HTTPClient: hc,
		URL:        &url,
		Key:        &key,
	}}
	return &API{
		users:   user.NewClient(backend),
		orgs:    organization.NewClient(backend),
		members: organizationmembership.NewClient(backend),
		jwks:    jwks.NewClient(backend),
		cfg:     cfg,
		logger:  logger,
	}
}

// InstanceID returns the id (ins_...) of the Clerk instance the secret key belongs to: the key
// id of the instance's JSON Web Key Set (GET /v1/jwks), which Clerk names after the instance.
// It returns an error wrapping ErrRateLimited when Clerk keeps answering 429, one wrapping
// ErrKeyRefused when Clerk refuses the secret key, an error when the key set names no instance
// or several, and Clerk's or the network's error otherwise.
func (c *API) InstanceID(ctx context.Context) (string, error) {
	var set *sdk.JSONWebKeySet
	err := c.retry(ctx, "GET /jwks", func() error {
		var err error
		set, err = c.jwks.Get(ctx, &jwks.GetParams{})
		return err
	})
	if err != nil {
		return "", fmt.Errorf("read the Clerk instance (GET /jwks): %w", err)
	}
	// Every key of the set is named after the instance.
	var ids []string
	for _, k := range set.Keys {
		if k != nil && k.KeyID != "" && !slices.Contains(ids, k.KeyID) {
			ids = append(ids, k.KeyID)
		}
	}
	if len(ids) != 1 {
		return "", fmt.Errorf("read the Clerk instance (GET /jwks): the key set names %d instances %q, not one; "+
			"check that CLERK_API_URL is Clerk's Backend API (%s)", len(ids), ids, sdk.APIURL)
	}
	return ids[0], nil
}

// ListUsers returns the users from offset on, at most limit (1 to MaxPageSize) of them,
// oldest first (order_by=+created_at, so that users signing up meanwhile land on later pages
// instead of shifting the earlier ones), in one request (GET /v1/users; the SDK's user.List
// would count them too, in a second one). It returns an error wrapping ErrRateLimited when
// Clerk keeps answering 429, and Clerk's or the network's error otherwise.
func (c *API) ListUsers(ctx context.Context, limit, offset int) (UserPage, error) {
	page, err := c.listUsers(ctx, "+created_at", limit, offset)
	if err != nil {
		return UserPage{}, fmt.Errorf("list Clerk users (limit %d, offset %d): %w", limit, offset, err)
	}
	return page, nil
}

// listUsers reads one page of GET /v1/users ordered by orderBy (retried on 429 as every call
// is), without the SDK's second request for the count.
func (c *API) listUsers(ctx context.Context, orderBy string, limit, offset int) (UserPage, error) {
	params := &user.ListParams{OrderBy: sdk.String(orderBy)}
	params.Limit = sdk.Int64(int64(limit))
	params.Offset = sdk.Int64(int64(offset))
	var list userList
	err := c.retry(ctx, fmt.Sprintf("GET /users?order_by=%s&offset=%d", orderBy, offset), func() error {
		list = nil
		req := sdk.NewAPIRequest(http.MethodGet, "/users")
		req.SetParams(params)
		return c.users.Backend.Call(ctx, req, &list)
	})
	if err != nil {
		return UserPage{}, err
	}
	page := UserPage{Users: make([]User, 0, len(list))}
	for _, u := range list {
		if u != nil {
			page.Users = append(page.Users, fromSDK(u))
		}
	}
	return page, nil
}

// userList is GET /v1/users' answer: a JSON array of users.
type userList []*sdk.User

// Read implements sdk.ResponseReader: the raw answer is not kept.
func (*userList) Read(*sdk.APIResponse) {}

// CountUsers returns how many users Clerk has (GET /v1/users/count), for a progress line. It
// returns an error wrapping ErrRateLimited when Clerk keeps answering 429, and Clerk's or the
// network's error otherwise.
func (c *API) CountUsers(ctx context.Context) (int64, error) {
	var n *user.TotalCount
	err := c.retry(ctx, "GET /users/count", func() error {
		var err error
		n, err = c.users.Count(ctx, &user.ListParams{})
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("count Clerk users: %w", err)
	}
	return n.TotalCount, nil
}

// GetUser returns the user with the given id (GET /v1/users/{id}, the id escaped as one path
// segment, so that nothing in it reaches Clerk as a query or another path). It returns an
// error wrapping ErrUserNotFound when Clerk answers 404, one wrapping ErrRateLimited when
// Clerk keeps answering 429, one wrapping ErrKeyRefused when Clerk refuses the secret key,
// one wrapping ErrOtherUser when the answer carries another id, one for an empty id or one
// that is no path segment ("." or ".."), and Clerk's or the network's error otherwise.
func (c *API) GetUser(ctx context.Context, id string) (User, error) {
	if strings.TrimSpace(id) == "" {
		return User{}, errors.New("get Clerk user: empty user id")
	}
	if id == "." || id == ".." {
		return User{}, fmt.Errorf("get Clerk user: %q is not a user id", id)
	}
	var u *sdk.User
	err := c.retry(ctx, "GET /users/"+id, func() error {
		var err error
		u, err = c.users.Get(ctx, url.PathEscape(id))
		return err
	})
	var apiErr *sdk.APIErrorResponse
	switch {
	case errors.As(err, &apiErr) && apiErr.HTTPStatusCode == http.StatusNotFound:
		return User{}, fmt.Errorf("%w: %s", ErrUserNotFound, id)
	case err != nil:
		return User{}, fmt.Errorf("get Clerk user %s: %w", id, err)
	case u.ID != id:
		return User{}, fmt.Errorf("get Clerk user %s: %w (%q)", id, ErrOtherUser, u.ID)
	}
	return fromSDK(u), nil
}

// retry runs call, and runs it again after each 429 once the Retry-After delay has passed, at
// most MaxRateLimitRetries times. It sits out a delay only when it is within waitLimit (so a
// reconciliation step never waits past its budget); otherwise it returns at once. It returns
// call's last error (wrapping ErrKeyRefused too when Clerk answered 401), ctx's error when ctx
// ends while waiting, or an error wrapping the last *RateLimitedError (so ErrRateLimited) when
// it gives up: the caller can come back after its RetryAfter.
func (c *API) retry(ctx context.Context, what string, call func() error) error {
	for attempt := 1; ; attempt++ {
		err := call()
		var rl *RateLimitedError
		if !errors.As(err, &rl) {
			return keyRefused(err)
		}
		wait := rl.RetryAfter
		if wait <= 0 {
			wait = time.Second
		}
		if attempt > c.cfg.MaxRateLimitRetries {
			return fmt.Errorf("%s: %w %d times in a row; giving up for now", what, rl, attempt)
		}
		if limit, why := c.waitLimit(ctx, time.Now()); wait > limit {
			return fmt.Errorf("%s: %w, longer than %s", what, rl, why)
		}
		c.logger.Warn("Clerk rate limit hit; retrying after Retry-After", "request", what, "retry_after", wait, "attempt", attempt)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%s: waiting out a 429: %w", what, ctx.Err())
		case <-t.C:
		}
	}
}

// keyRefused returns err with ErrKeyRefused added when it is Clerk's 401 answer, and err
// unchanged otherwise (nil included).
func keyRefused(err error) error {
	var apiErr *sdk.APIErrorResponse
	if errors.As(err, &apiErr) && apiErr.HTTPStatusCode == http.StatusUnauthorized {
		return fmt.Errorf("%w: %w", ErrKeyRefused, err)
	}
	return err
}

// waitLimit returns the longest 429 delay a call under ctx sits out itself at now, and what sets
// it (for the error): the smallest of MaxRetryAfter, the limit ctx carries (WithMaxRetryWait),
// and half the time left before ctx's deadline (the other half is for the request after the
// wait).
func (c *API) waitLimit(ctx context.Context, now time.Time) (time.Duration, string) {
	limit, why := c.cfg.MaxRetryAfter, fmt.Sprintf("the %s this client waits", c.cfg.MaxRetryAfter)
	if d, ok := ctx.Value(maxWaitKey{}).(time.Duration); ok && d < limit {
		limit, why = d, fmt.Sprintf("the %s a reconciliation step waits", d)
	}
	if deadline, ok := ctx.Deadline(); ok {
		if left := deadline.Sub(now); left/2 < limit {
			limit, why = left/2, fmt.Sprintf("half the %s left before the deadline", left.Round(time.Millisecond))
		}
	}
	return limit, why
}

// maxWaitKey is the context key of the longest 429 delay API sits out itself.
type maxWaitKey struct{}

// WithMaxRetryWait returns a copy of ctx under which API's calls sit out a 429 only when Clerk
// asks for at most d (a reconciliation step sets it, so that the step ends within its budget);
// a longer delay fails the call at once with an error wrapping a *RateLimitedError, which says
// when to come back. It cannot fail.
func WithMaxRetryWait(ctx context.Context, d time.Duration) context.Context {
	return context.WithValue(ctx, maxWaitKey{}, d)
}

// rateLimitTransport keeps the client's requests within its own rate limit (gate; nil: none),
// and turns a 429 answer into a *RateLimitedError carrying its Retry-After, whatever the body
// says (the SDK keeps the status only for bodies in Clerk's error shape).
type rateLimitTransport struct {
	base http.RoundTripper
	gate *rateGate
}

// RoundTrip waits until req fits the client's rate limit, then sends it through the base
// transport. It returns a *RateLimitedError instead of a 429 answer (whose body it drains and
// closes), the gate's error when req's context ends (or would end) before req fits, and the
// base transport's answer and error otherwise.
func (t rateLimitTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.gate != nil && limited(req) {
		if err := t.gate.acquire(req.Context()); err != nil {
			if req.Body != nil {
				req.Body.Close()
			}
			return nil, err
		}
		// Given back once the answer's headers are in: Clerk counted req before that.
		defer t.gate.release()
	}
	resp, err := t.base.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusTooManyRequests {
		return resp, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return nil, &RateLimitedError{RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())}
}

// parseRetryAfter reads a Retry-After value: seconds (what Clerk sends) or an HTTP date. It
// returns zero for a missing or unreadable value.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil {
		if s < 0 {
			return 0
		}
		return time.Duration(s) * time.Second
	}
	if at, err := http.ParseTime(v); err == nil && at.After(now) {
		return at.Sub(now)
	}
	return 0
}

// fromSDK maps the SDK's user to the fields the service keeps (the same fields, by the same
// JSON names, as the webhook's data).
func fromSDK(u *sdk.User) User {
	c := User{
		ID:                    u.ID,
		FirstName:             u.FirstName,
		LastName:              u.LastName,
		Username:              u.Username,
		ImageURL:              u.ImageURL,
		PrimaryEmailAddressID: u.PrimaryEmailAddressID,
		CreatedAt:             u.CreatedAt,
		UpdatedAt:             u.UpdatedAt,
	}
	for _, e := range u.EmailAddresses {
		if e != nil {
			c.EmailAddresses = append(c.EmailAddresses, EmailAddress{ID: e.ID, EmailAddress: e.EmailAddress})
		}
	}
	return c
}
