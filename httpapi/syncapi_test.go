package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"clerksync/clerk"
	"clerksync/clerk/clerkfake"
	"clerksync/store"
)

// syncToken is the bearer token of the on-demand sync in these tests.
var syncToken = strings.Repeat("t0k3n", 8)

// fakeClerk is Clerk's Backend API as the on-demand sync reads it: users by id, errors by id,
// and the key's instance. When gate is not nil, InstanceID waits for it.
type fakeClerk struct {
	users       map[string]clerk.User
	errs        map[string]error
	instance    string
	instanceErr error
	gate        chan struct{}

	mu            sync.Mutex
	asked         []string
	instanceCalls int
}

func (c *fakeClerk) GetUser(_ context.Context, id string) (clerk.User, error) {
	c.mu.Lock()
	c.asked = append(c.asked, id)
	c.mu.Unlock()
	if err := c.errs[id]; err != nil {
		return clerk.User{}, err
	}
	u, ok := c.users[id]
	if !ok {
		return clerk.User{}, fmt.Errorf("GET /users/%s: %w", id, clerk.ErrUserNotFound)
	}
	return u, nil
}

func (c *fakeClerk) InstanceID(ctx context.Context) (string, error) {
	c.mu.Lock()
	c.instanceCalls++
	c.mu.Unlock()
	if c.gate != nil {
		select {
		case <-c.gate:
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	return c.instance, c.instanceErr
}

// calls returns the user ids asked for and how many instance checks reached Clerk.
func (c *fakeClerk) calls() ([]string, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.asked...), c.instanceCalls
}

// fakeStore is the store as the on-demand sync uses it: UpsertUser writes what it is given
// (keeping a deleted user deleted) and answers outcome, or writeErr.
type fakeStore struct {
	outcome     store.Outcome
	writeErr    error
	instance    string
	instanceErr error

	mu      sync.Mutex
	users   map[string]store.User
	written []store.User
}

func (s *fakeStore) UpsertUser(_ context.Context, u store.User) (store.Outcome, error) {
	if s.writeErr != nil {
		return "", s.writeErr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.written = append(s.written, u)
	if s.users == nil {
		s.users = map[string]store.User{}
	}
	if old, ok := s.users[u.ID]; ok && old.Deleted {
		return store.Skipped, nil
	}
	s.users[u.ID] = u
	if s.outcome == "" {
		return store.Inserted, nil
	}
	return s.outcome, nil
}

func (s *fakeStore) Get(_ context.Context, id string) (store.User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[id]
	if !ok {
		return store.User{}, store.ErrNotFound
	}
	return u, nil
}

func (s *fakeStore) ClerkInstance(context.Context) (string, error) { return s.instance, s.instanceErr }

// writes returns what UpsertUser was given.
func (s *fakeStore) writes() []store.User {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]store.User(nil), s.written...)
}

// fakeSyncMetrics records each SyncRequest's result.
type fakeSyncMetrics struct {
	mu      sync.Mutex
	results []string
}

func (m *fakeSyncMetrics) SyncRequest(result string, _ time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.results = append(m.results, result)
}

func (m *fakeSyncMetrics) got() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.results...)
}

// postSync sends POST /api/sync/users/<rawID> (as it goes on the wire) to h, with the
// Authorization header auth ("" for none).
func postSync(h http.Handler, auth, rawID string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/api/sync/users/"+rawID, nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// TestSyncUser drives POST /api/sync/users/{id} through NewHandler against a fake Clerk and
// store: each answer, its Retry-After, what reached Clerk and the store, and the result
// counted.
func TestSyncUser(t *testing.T) {
	t.Parallel()
	unstorable := clerkfake.NewUser("user_unstorable", "No", 0).Clerk()
	bearer := "Bearer " + syncToken
	tests := []struct {
		name      string
		token     string // the handler's; "" means syncToken
		auth, id  string
		clerk     *fakeClerk // nil: one with the users below
		store     *fakeStore // nil: an empty one
		deleted   bool       // the stored user is a tombstone before the request
		want      int
		wantRetry string // Retry-After; "" for none
		wantBody  string // a part of the answer
		result    string
		asksClerk bool // GetUser is called
		writes    bool // UpsertUser is called
	}{
		{name: "missing user appears", auth: bearer, id: "user_fresh", want: 200, wantBody: `"full_name":"Fresh Doe"`, result: syncSynced, asksClerk: true, writes: true},
		{name: "nothing newer", auth: bearer, id: "user_fresh", store: &fakeStore{outcome: store.Skipped}, want: 200, wantBody: `"outcome":"skipped"`, result: syncSynced, asksClerk: true, writes: true},
		{name: "no token", id: "user_fresh", want: 401, wantBody: "send Authorization: Bearer", result: syncUnauthorized},
		{name: "wrong token", auth: bearer + "x", id: "user_fresh", want: 401, result: syncUnauthorized},
		{name: "the token's prefix", auth: bearer[:20], id: "user_fresh", want: 401, result: syncUnauthorized},
		{name: "a Basic header", auth: "Basic " + syncToken, id: "user_fresh", want: 401, result: syncUnauthorized},
		{name: "an empty token refuses everyone", token: "-", auth: "Bearer ", id: "user_fresh", want: 401, result: syncUnauthorized},
		{name: "a query in the id", auth: bearer, id: "user_abc%3Fexpand=x", want: 400, wantBody: "user_ followed by 1 to 64 letters or digits", result: syncInvalidID},
		{name: "another path in the id", auth: bearer, id: "user_abc%2F..%2Fjwks", want: 400, result: syncInvalidID},
		{name: "65 characters", auth: bearer, id: "user_" + strings.Repeat("a", 65), want: 400, result: syncInvalidID},
		{name: "an organization id", auth: bearer, id: "org_2abc", want: 400, result: syncInvalidID},
		{name: "deleted user stays deleted", auth: bearer, id: "user_fresh", deleted: true, want: 410, wantBody: `"deleted":true`, result: syncGone, asksClerk: true, writes: true},
		{name: "Clerk has no such user", auth: bearer, id: "user_nobody", want: 404, wantBody: "Clerk has no user user_nobody", result: syncNotFound, asksClerk: true},
		{name: "Clerk answers another user", auth: bearer, id: "user_fresh", clerk: &fakeClerk{errs: map[string]error{"user_fresh": clerk.ErrOtherUser}}, want: 502, wantBody: "nothing was written", result: syncOtherUser, asksClerk: true},
		{name: "Clerk's user cannot be stored", auth: bearer, id: "user_unstorable", want: 422, wantBody: "cannot be stored", result: syncUnstorable, asksClerk: true},
		{name: "Clerk refuses the key", auth: bearer, id: "user_fresh", clerk: &fakeClerk{errs: map[string]error{"user_fresh": fmt.Errorf("GET /users: %w", clerk.ErrKeyRefused)}}, want: 503, wantRetry: "300", wantBody: "CLERK_SECRET_KEY", result: syncKeyRefused, asksClerk: true},
		{name: "Clerk refuses the key at the instance check", auth: bearer, id: "user_fresh", clerk: &fakeClerk{instanceErr: clerk.ErrKeyRefused}, store: &fakeStore{instance: "ins_1"}, want: 503, wantRetry: "300", result: syncKeyRefused},
		{name: "Clerk's rate limit", auth: bearer, id: "user_fresh", clerk: &fakeClerk{errs: map[string]error{"user_fresh": &clerk.RateLimitedError{RetryAfter: 7 * time.Second}}}, want: 503, wantRetry: "7", result: syncRateLimited, asksClerk: true},
		{name: "Clerk unreachable", auth: bearer, id: "user_fresh", clerk: &fakeClerk{errs: map[string]error{"user_fresh": errors.New("dial tcp: connection refused")}}, want: 503, wantRetry: "1", result: syncClerkUnavailable, asksClerk: true},
		{name: "the write fails", auth: bearer, id: "user_fresh", store: &fakeStore{writeErr: fmt.Errorf("upsert: %w", store.ErrDatabase)}, want: 503, wantRetry: "1", result: syncDBUnavailable, asksClerk: true},
		{name: "the key is another instance's", auth: bearer, id: "user_fresh", store: &fakeStore{instance: "ins_other"}, want: 409, wantBody: "forget-clerk-instance", result: syncOtherInstance},
		{name: "the recorded instance cannot be read", auth: bearer, id: "user_fresh", store: &fakeStore{instanceErr: fmt.Errorf("find: %w", store.ErrDatabase)}, want: 503, wantRetry: "1", result: syncDBUnavailable},
		{name: "the key is the recorded instance's", auth: bearer, id: "user_fresh", store: &fakeStore{instance: "ins_1"}, want: 200, result: syncSynced, asksClerk: true, writes: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			api, db := tt.clerk, tt.store
			if api == nil {
				api = &fakeClerk{}
			}
			if db == nil {
				db = &fakeStore{}
			}
			api.users = map[string]clerk.User{"user_fresh": clerkfake.NewUser("user_fresh", "Fresh", 2000).Clerk(), "user_unstorable": unstorable}
			if api.instance == "" {
				api.instance = "ins_1"
			}
			if tt.deleted {
				db.users = map[string]store.User{"user_fresh": {ID: "user_fresh", UpdatedAt: 9000, Deleted: true}}
			}
			token := syncToken
			if tt.token == "-" {
				token = ""
			}
			m := &fakeSyncMetrics{}
			h := NewHandler(Deps{SyncUser: &SyncUser{Token: token, Clerk: api, Store: db, Metrics: m}})
			rec := postSync(h, tt.auth, tt.id)
			if rec.Code != tt.want || rec.Header().Get("Retry-After") != tt.wantRetry || !strings.Contains(rec.Body.String(), tt.wantBody) {
				t.Errorf("POST /api/sync/users/%s = %d Retry-After %q %s; want %d Retry-After %q containing %q",
					cutForLog(tt.id, 40), rec.Code, rec.Header().Get("Retry-After"), rec.Body, tt.want, tt.wantRetry, tt.wantBody)
			}
			if rec.Code == http.StatusUnauthorized && rec.Header().Get("WWW-Authenticate") != `Bearer realm="clerk-user-sync"` {
				t.Errorf("POST /api/sync/users/%s = 401 with WWW-Authenticate %q; want the Bearer realm", tt.id, rec.Header().Get("WWW-Authenticate"))
			}
			if rec.Code == http.StatusBadRequest && strings.Contains(rec.Body.String(), "user_abc") {
				t.Errorf("POST /api/sync/users/%s answered the id back: %s", tt.id, rec.Body)
			}
			if got := m.got(); len(got) != 1 || got[0] != tt.result {
				t.Errorf("POST /api/sync/users/%s counted %q; want [%s]", tt.id, got, tt.result)
			}
			if asked, _ := api.calls(); (len(asked) > 0) != tt.asksClerk {
				t.Errorf("POST /api/sync/users/%s asked Clerk for %q; want a request %v", tt.id, asked, tt.asksClerk)
			}
			writes := db.writes()
			if (len(writes) > 0) != tt.writes {
				t.Errorf("POST /api/sync/users/%s wrote %d users; want a write %v", tt.id, len(writes), tt.writes)
			}
			// Clerk's record repairs a stored user of the same version (store.User.Repair).
			for _, w := range writes {
				if !w.Repair {
					t.Errorf("POST /api/sync/users/%s wrote %+v; want it as a repair", tt.id, w)
				}
			}
		})
	}
}

// TestSyncAnswersTheStoredUser: the answer is the stored document, not Clerk's: a newer stored
// version is kept and answered.
func TestSyncAnswersTheStoredUser(t *testing.T) {
	t.Parallel()
	api := &fakeClerk{instance: "ins_1", users: map[string]clerk.User{"user_newer": clerkfake.NewUser("user_newer", "Stale", 1000).Clerk()}}
	newer, err := clerkfake.NewUser("user_newer", "Newer", 5000).Clerk().StoreUser(0)
	if err != nil {
		t.Fatal(err)
	}
	newer.Username = "newer_handle"
	h := NewHandler(Deps{SyncUser: &SyncUser{Token: syncToken, Clerk: api, Store: &storeKeepingNewer{fakeStore: &fakeStore{}, kept: newer}}})
	rec := postSync(h, "Bearer "+syncToken, "user_newer")
	var got SyncedUser
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || rec.Code != 200 || got.Email == nil {
		t.Fatalf("POST /api/sync/users/user_newer = %d %s; want 200 and the stored user", rec.Code, rec.Body)
	}
	email := *got.Email
	got.Email = nil
	want := SyncedUser{ID: "user_newer", FullName: "Newer Doe", Username: "newer_handle", ProfilePicture: "https://img.clerk.com/user_newer",
		CreatedAt: 500, UpdatedAt: 5000, Outcome: store.Skipped}
	if got != want || email != "user_newer@example.com" {
		t.Errorf("POST /api/sync/users/user_newer answered %+v (email %q); want %+v (email user_newer@example.com)", got, email, want)
	}
}

// storeKeepingNewer is a store that holds kept, newer than anything written.
type storeKeepingNewer struct {
	*fakeStore
	kept store.User
}

func (s *storeKeepingNewer) UpsertUser(context.Context, store.User) (store.Outcome, error) {
	return store.Skipped, nil
}

func (s *storeKeepingNewer) Get(context.Context, string) (store.User, error) { return s.kept, nil }

// TestSyncLogsConfigurationErrorsOnce: a refused key or another instance's key, which every
// request meets until the operator acts, is logged once a minute at most, at error; each
// request is still counted. An invalid id is logged cut to 40 bytes.
func TestSyncLogsConfigurationErrorsOnce(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		clerk *fakeClerk
		db    *fakeStore
		msg   string
	}{
		{"refused key", &fakeClerk{instance: "ins_1", errs: map[string]error{"user_a": clerk.ErrKeyRefused}}, &fakeStore{}, "Clerk refused CLERK_SECRET_KEY"},
		{"another instance", &fakeClerk{instance: "ins_1"}, &fakeStore{instance: "ins_2"}, "on-demand sync refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			logger, logs := textLogger()
			m := &fakeSyncMetrics{}
			h := NewHandler(Deps{Logger: logger, SyncUser: &SyncUser{Token: syncToken, Clerk: tt.clerk, Store: tt.db, Metrics: m}})
			for range 3 {
				postSync(h, "Bearer "+syncToken, "user_a")
			}
			if got := strings.Count(logs.String(), tt.msg); got != 1 || !strings.Contains(logs.String(), "level=ERROR") {
				t.Errorf("log lines %q after 3 requests = %d; want 1 at ERROR:\n%s", tt.msg, got, logs)
			}
			if got := len(m.got()); got != 3 {
				t.Errorf("requests counted = %d; want 3", got)
			}
		})
	}
	t.Run("invalid id", func(t *testing.T) {
		t.Parallel()
		logger, logs := textLogger()
		huge := "user_" + strings.Repeat("A", 60<<10)
		postSync(NewHandler(Deps{Logger: logger, SyncUser: &SyncUser{Token: syncToken, Clerk: &fakeClerk{}, Store: &fakeStore{}}}), "Bearer "+syncToken, huge)
		if !strings.Contains(logs.String(), "not a Clerk user id") || strings.Contains(logs.String(), huge[:300]) {
			t.Errorf("the log of a 60 KB id: want a line saying it is not a Clerk user id, with 40 bytes of it at most:\n%.2000s", logs)
		}
	})
}

// TestSyncSharesInstanceCheck: concurrent syncs share one check of the Clerk instance in
// flight, instead of one each or one behind another; a passed check is remembered.
func TestSyncSharesInstanceCheck(t *testing.T) {
	t.Parallel()
	const n = 30
	api := &fakeClerk{instance: "ins_1", gate: make(chan struct{}), users: map[string]clerk.User{}}
	for i := range n {
		id := fmt.Sprintf("user_conc%02d", i)
		api.users[id] = clerkfake.NewUser(id, "Conc", 1000).Clerk()
	}
	h := NewHandler(Deps{SyncUser: &SyncUser{Token: syncToken, Clerk: api, Store: &fakeStore{instance: "ins_1"}}})
	codes := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { codes[i] = postSync(h, "Bearer "+syncToken, fmt.Sprintf("user_conc%02d", i)).Code })
	}
	// Every request reaches the check before it answers.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, calls := api.calls(); calls >= 1 || time.Now().After(deadline) {
			break
		}
	}
	time.Sleep(200 * time.Millisecond) // the other 29 arrive and join the check in flight
	close(api.gate)
	wg.Wait()
	for i, got := range codes {
		if got != http.StatusOK {
			t.Errorf("POST /api/sync/users/user_conc%02d = %d; want 200", i, got)
		}
	}
	if _, calls := api.calls(); calls != 1 {
		t.Errorf("%d concurrent syncs checked the Clerk instance %d times; want 1 shared check", n, calls)
	}
	postSync(h, "Bearer "+syncToken, "user_conc00")
	if _, calls := api.calls(); calls != 1 {
		t.Errorf("a sync after the check passed checked the instance again (%d checks); want the pass remembered", calls)
	}
}
