// Package clerkfake is a stand-in for the parts of Clerk's Backend API the service reads, for
// tests and for measurements against large instances: GET /v1/users (limit, offset, order_by
// +created_at or ±updated_at), GET
// /v1/users/count and GET /v1/users/{id}, answering in the shapes Clerk documents (a JSON array
// of User objects; {"object":"total_count",...}; a User or a 404
// {"errors":[{"code":"resource_not_found",...}]}); GET /v1/organizations, GET
// /v1/organizations/{id} and GET /v1/organizations/{id}/memberships (limit, offset, user_id),
// answering {"data":[...],"total_count":N} lists of Organization and OrganizationMembership
// objects, or the same 404 (or, with organizations turned off, Clerk's
// organization_not_enabled_in_instance); and GET /v1/jwks (the instance's JSON Web Key Set,
// whose key id is the instance id). It checks the secret key (401 authentication_invalid
// otherwise), and gives 429 with Retry-After, answers late, or answers another user, on
// request.
//
// New starts one for a test; Start serves one on a listener of the caller's, for a command.
// Generate gives it any number of users computed from their index (GeneratedUser), so that a
// million users cost next to no memory; LimitRate enforces a rate limit as Clerk's Backend API
// does (1,000 requests per 10 s on production instances, 100 on development ones), and Stats
// counts the requests and the 429s.
package clerkfake

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// User is one Clerk user as the stand-in serves it. Empty strings are served as null (an
// empty Email: no email address at all).
type User struct {
	ID                   string
	FirstName, LastName  string
	Username             string
	Email                string
	ImageURL             string
	CreatedAt, UpdatedAt int64 // Unix milliseconds
}

// DefaultInstance is the instance id (the key id of GET /v1/jwks) a new stand-in serves.
const DefaultInstance = "ins_fake2kXcLeRkInStAnCe0001"

// Server is the stand-in. Its users, organizations and memberships are listed in the order
// they were added (Clerk's order_by=+created_at for those added oldest first): the users
// Prepend added, then the generated ones (Generate), then those New, Start and Put added.
// GET /v1/users with order_by=-updated_at (+updated_at) lists the users most (least)
// recently updated first instead, ties in the order added (GenerateChanged makes some of the
// generated users recently updated).
type Server struct {
	// URL is the API's base URL, ending in /v1: what CLERK_API_URL would be.
	URL string
	// Key is the secret key requests must carry as "Authorization: Bearer <Key>".
	Key string

	mu             sync.Mutex
	users          userList
	orgs           []Organization
	members        []Membership
	genMembers     map[string]int // GenerateOrganization's organizations: their generated members' count
	orgsDisabled   bool           // the organization endpoints answer organization_not_enabled_in_instance
	keyIDs         []string       // the kid of each key GET /v1/jwks serves
	signingKey     *rsa.PublicKey // generated on the first GET /v1/jwks
	limits         []rateLimit    // the 429s still to give, one per matching request
	delays         []delay
	requests       []string
	beforeList     map[string]func(offset int) // by the list's path
	answerAs       map[string]string           // GET /v1/users/{key} answers the user {value}
	rate           rateLimiter                 // LimitRate's limit; none when its n is 0
	now            func() time.Time            // the rate limiter's clock
	total, tooMany int64                       // Stats
	close          func() error                // stops Start's server
}

// newServer returns a stand-in, not serving yet, that has users and checks the key key.
func newServer(key string, users []User) *Server {
	return &Server{Key: key, users: userList{tail: slices.Clone(users)}, keyIDs: []string{DefaultInstance}, now: time.Now}
}

// New starts a stand-in serving users to requests with the secret key key; it stops when the
// test ends.
func New(t testing.TB, key string, users ...User) *Server {
	t.Helper()
	s := newServer(key, users)
	srv := httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(srv.Close)
	s.URL = srv.URL + "/v1"
	s.close = func() error { srv.Close(); return nil }
	return s
}

// Start serves a stand-in on ln, which the caller picked (net.Listen("tcp",
// "127.0.0.1:8090"), say), with users and the secret key key, until Close. Its URL is
// http://<ln's address>/v1.
func Start(ln net.Listener, key string, users ...User) *Server {
	s := newServer(key, users)
	srv := &http.Server{Handler: http.HandlerFunc(s.serve), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }() // ends with http.ErrServerClosed once Close is called
	s.URL = "http://" + ln.Addr().String() + "/v1"
	s.close = srv.Close
	return s
}

// Close stops serving and closes the open connections. It returns the listener's closing
// error, if any.
func (s *Server) Close() error { return s.close() }

// Generate makes the list hold n generated users, GeneratedUser(0) to GeneratedUser(n-1), in
// that order, after the users Prepend added and before those Put added at the end. They are
// computed when served, not stored. Put replaces one of them (by its id) where it is, and
// Remove removes it, as for any other user. Generate forgets the replacements and removals
// of an earlier Generate.
func (s *Server) Generate(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users.generate(n)
}

// Stats is what the stand-in has counted since it started.
type Stats struct {
	// Requests counts every request received, whatever the answer.
	Requests int64
	// RateLimited counts those answered 429 (by LimitRate's limit, or asked for with
	// RateLimit).
	RateLimited int64
	// PeakWindow is the most requests answered in one of LimitRate's windows since the last
	// LimitRate (0 without a limit): a client that keeps within a share of the limit keeps it
	// at most its share.
	PeakWindow int
}

// Stats returns the counts so far.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{Requests: s.total, RateLimited: s.tooMany, PeakWindow: s.rate.peak}
}

// Put adds u at the end of the list, or replaces the user with u's id where it is.
func (s *Server) Put(u User) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users.put(u)
}

// Prepend adds u at the start of the list, shifting every other user one place on.
func (s *Server) Prepend(u User) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users.prepend(u)
}

// Remove deletes the user with the given id, shifting the later users one place back.
func (s *Server) Remove(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users.remove(id)
}

// AnswerAs makes GET /v1/users/{id} answer the user otherID instead, as a proxy or cache in
// front of Clerk that mixed up answers would, to test that a client notices.
func (s *Server) AnswerAs(id, otherID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.answerAs == nil {
		s.answerAs = map[string]string{}
	}
	s.answerAs[id] = otherID
}

// SetInstance makes the stand-in another Clerk instance: GET /v1/jwks serves one key, whose
// id is id (ins_...), from now on.
func (s *Server) SetInstance(id string) { s.SetKeyIDs(id) }

// SetKeyIDs makes GET /v1/jwks serve one key per id given, with that key id (none: an empty
// key set), to test clients against key sets Clerk does not serve.
func (s *Server) SetKeyIDs(ids ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keyIDs = slices.Clone(ids)
}

// rateLimit is one 429 to give, to the next request starting with prefix.
type rateLimit struct {
	prefix, retryAfter string
}

// delay makes the requests starting with prefix wait d before their answer.
type delay struct {
	prefix string
	d      time.Duration
}

// RateLimit makes the next len(retryAfter) requests answer 429, each with the given
// Retry-After header ("" for none).
func (s *Server) RateLimit(retryAfter ...string) { s.RateLimitOn("", retryAfter...) }

// RateLimitOn makes the next len(retryAfter) requests starting with prefix, as Requests shows
// them ("GET /v1/jwks", "GET /v1/users?", "GET /v1/users/user_", "GET /v1/organizations?",
// "GET /v1/organizations/org_1/memberships"), answer 429, each with the
// given Retry-After header ("" for none).
func (s *Server) RateLimitOn(prefix string, retryAfter ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range retryAfter {
		s.limits = append(s.limits, rateLimit{prefix: prefix, retryAfter: v})
	}
}

// Delay makes every later request starting with prefix, as Requests shows them, wait d before
// it is answered, or until the client gives up on it (it then gets no answer).
func (s *Server) Delay(prefix string, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delays = append(s.delays, delay{prefix: prefix, d: d})
}

// BeforeList sets f to run before each GET /v1/users is answered, with the requested offset:
// a test changes the users between pages there.
func (s *Server) BeforeList(f func(offset int)) { s.BeforeListOf("/v1/users", f) }

// BeforeListOf sets f to run before each list request on path is answered ("/v1/users",
// "/v1/organizations", "/v1/organizations/org_.../memberships"), with the requested offset,
// replacing the hook path had (nil: none): a test changes the list, or the database, there.
func (s *Server) BeforeListOf(path string, f func(offset int)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.beforeList == nil {
		s.beforeList = map[string]func(int){}
	}
	s.beforeList[path] = f
}

// Requests returns every request received so far, as "GET /v1/users?limit=2&offset=0" (the
// path as sent, escapes kept: "GET /v1/users/user_a%3Fx"; the query sorted by name) or
// "429 GET ..." for those answered 429.
func (s *Server) Requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	req := r.Method + " " + r.URL.EscapedPath()
	if q := r.URL.Query().Encode(); q != "" {
		req += "?" + q
	}
	if r.Header.Get("Authorization") != "Bearer "+s.Key {
		s.log(req)
		writeError(w, http.StatusUnauthorized, "authentication_invalid", "Unable to authenticate the request, you need to supply an active API key")
		return
	}
	s.mu.Lock()
	s.total++
	retryAfter, limited := "", false
	if i := slices.IndexFunc(s.limits, func(l rateLimit) bool { return strings.HasPrefix(req, l.prefix) }); i >= 0 {
		retryAfter, limited = s.limits[i].retryAfter, true
		s.limits = slices.Delete(s.limits, i, i+1)
	} else if r.URL.Path != "/v1/jwks" { // Clerk does not rate-limit GET /v1/jwks
		retryAfter, limited = s.rate.take(s.now())
	}
	if limited {
		s.tooMany++
		s.requests = append(s.requests, "429 "+req)
		s.mu.Unlock()
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		writeError(w, http.StatusTooManyRequests, "too_many_requests", "Too many requests, retry later")
		return
	}
	s.requests = append(s.requests, req)
	var wait time.Duration
	for _, d := range s.delays {
		if strings.HasPrefix(req, d.prefix) {
			wait += d.d
		}
	}
	s.mu.Unlock()
	if wait > 0 {
		select {
		case <-r.Context().Done():
			return
		case <-time.After(wait):
		}
	}

	switch {
	case r.Method != http.MethodGet:
		writeError(w, http.StatusNotFound, "resource_not_found", "not found")
	case r.URL.Path == "/v1/jwks":
		s.serveJWKS(w)
	case r.URL.Path == "/v1/users" || strings.HasPrefix(r.URL.Path, "/v1/users/"):
		s.serveUsers(w, r)
	case r.URL.Path == "/v1/organizations" || strings.HasPrefix(r.URL.Path, "/v1/organizations/"):
		s.serveOrganizations(w, r)
	default:
		writeError(w, http.StatusNotFound, "resource_not_found", "not found")
	}
}

// serveUsers answers GET /v1/users, /v1/users/count and /v1/users/{id}.
func (s *Server) serveUsers(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimPrefix(r.URL.Path, "/v1/users")
	switch {
	case path == "" || path == "/":
		limit, offset, ok := s.listRange(w, r)
		if !ok {
			return
		}
		order := orderOf(r.URL.Query().Get("order_by"))
		s.mu.Lock()
		page := []any{}
		for i := offset; i < s.users.len() && i < offset+limit; i++ {
			page = append(page, clerkUser(s.users.atInOrder(order, i)))
		}
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, page)
	case path == "/count":
		s.mu.Lock()
		n := s.users.len()
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]any{"object": "total_count", "total_count": n})
	default:
		id := strings.TrimPrefix(path, "/")
		s.mu.Lock()
		if other, ok := s.answerAs[id]; ok {
			id = other
		}
		u, found := s.users.lookup(id)
		s.mu.Unlock()
		if !found {
			writeError(w, http.StatusNotFound, "resource_not_found", "User not found")
			return
		}
		writeJSON(w, http.StatusOK, clerkUser(u))
	}
}

// listRange reads the limit (1 to 500, default 10) and offset (default 0) of a list request,
// and runs the list's BeforeListOf hook with the offset. It answers 422 as Clerk does, and
// returns false, when either is invalid.
func (s *Server) listRange(w http.ResponseWriter, r *http.Request) (limit, offset int, ok bool) {
	limit, lerr := intParam(r, "limit", 10)
	offset, oerr := intParam(r, "offset", 0)
	if lerr != nil || oerr != nil || limit < 1 || limit > 500 || offset < 0 {
		writeError(w, http.StatusUnprocessableEntity, "form_param_value_invalid", "limit must be 1 to 500 and offset 0 or more")
		return 0, 0, false
	}
	s.mu.Lock()
	hook := s.beforeList[strings.TrimSuffix(r.URL.Path, "/")]
	s.mu.Unlock()
	if hook != nil {
		hook(offset)
	}
	return limit, offset, true
}

// serveJWKS answers GET /v1/jwks as Clerk does: {"keys":[{"use":"sig","kty":"RSA","kid":
// "ins_...","alg":"RS256","n":...,"e":"AQAB"}]}, the key id being the instance id.
func (s *Server) serveJWKS(w http.ResponseWriter) {
	s.mu.Lock()
	if s.signingKey == nil {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			s.mu.Unlock()
			writeError(w, http.StatusInternalServerError, "internal_clerk_error", "cannot generate a signing key: "+err.Error())
			return
		}
		s.signingKey = &k.PublicKey
	}
	key, ids := s.signingKey, slices.Clone(s.keyIDs)
	s.mu.Unlock()
	b64 := base64.RawURLEncoding.EncodeToString
	keys := []any{}
	for _, id := range ids {
		keys = append(keys, map[string]any{
			"use": "sig",
			"kty": "RSA",
			"kid": id,
			"alg": "RS256",
			"n":   b64(key.N.Bytes()),
			"e":   b64(big.NewInt(int64(key.E)).Bytes()),
		})
	}
	writeJSON(w, http.StatusOK, map[string]any{"keys": keys})
}

func (s *Server) log(req string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.total++
	s.requests = append(s.requests, req)
}

func intParam(r *http.Request, name string, def int) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	return strconv.Atoi(v)
}

// clerkUser renders u as Clerk's User object.
func clerkUser(u User) map[string]any {
	emails := []any{}
	var primary any
	if u.Email != "" {
		id := "idn_" + strings.TrimPrefix(u.ID, "user_")
		primary = id
		emails = append(emails, map[string]any{
			"id":            id,
			"object":        "email_address",
			"email_address": u.Email,
			"reserved":      false,
			"verification":  map[string]any{"object": "verification_email_code", "status": "verified", "strategy": "email_code", "attempts": 1, "expire_at": u.CreatedAt + 600_000},
			"linked_to":     []any{},
			"created_at":    u.CreatedAt,
			"updated_at":    u.UpdatedAt,
		})
	}
	return map[string]any{
		"object":                          "user",
		"id":                              u.ID,
		"external_id":                     nil,
		"primary_email_address_id":        primary,
		"primary_phone_number_id":         nil,
		"primary_web3_wallet_id":          nil,
		"username":                        null(u.Username),
		"first_name":                      null(u.FirstName),
		"last_name":                       null(u.LastName),
		"profile_image_url":               u.ImageURL,
		"image_url":                       u.ImageURL,
		"has_image":                       u.ImageURL != "",
		"public_metadata":                 map[string]any{},
		"private_metadata":                map[string]any{},
		"unsafe_metadata":                 map[string]any{},
		"email_addresses":                 emails,
		"phone_numbers":                   []any{},
		"web3_wallets":                    []any{},
		"passkeys":                        []any{},
		"password_enabled":                true,
		"two_factor_enabled":              false,
		"totp_enabled":                    false,
		"backup_code_enabled":             false,
		"mfa_enabled_at":                  nil,
		"mfa_disabled_at":                 nil,
		"external_accounts":               []any{},
		"saml_accounts":                   []any{},
		"enterprise_accounts":             []any{},
		"last_sign_in_at":                 nil,
		"banned":                          false,
		"locked":                          false,
		"lockout_expires_in_seconds":      nil,
		"verification_attempts_remaining": 100,
		"created_at":                      u.CreatedAt,
		"updated_at":                      u.UpdatedAt,
		"delete_self_enabled":             true,
		"create_organization_enabled":     true,
		"create_organizations_limit":      nil,
		"last_active_at":                  nil,
		"legal_accepted_at":               nil,
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, long string) {
	writeErrorMessage(w, status, code, strings.ReplaceAll(code, "_", " "), long)
}

func writeErrorMessage(w http.ResponseWriter, status int, code, message, long string) {
	writeJSON(w, status, map[string]any{
		"errors": []any{map[string]any{
			"message":      message,
			"long_message": long,
			"code":         code,
		}},
		"clerk_trace_id": fmt.Sprintf("trace_%d", status),
	})
}
