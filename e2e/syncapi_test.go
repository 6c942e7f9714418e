package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"clerksync/clerk/clerkfake"
	"clerksync/metrics/metricstest"
	"clerksync/store"
)

// TestSyncUserOnDemand drives POST /api/sync/users/{id} through the whole service against the
// stand-in Backend API: a user missing from the database appears, a wrong token is refused,
// a deleted user stays deleted, and a newer stored version is kept.
func TestSyncUserOnDemand(t *testing.T) {
	parallel(t)
	const key = "sk_test_ondemand"
	token := strings.Repeat("t0k3n", 8)
	fake := clerkfake.New(t, key,
		clerkfake.NewUser("user_missing", "Fresh", 2000),
		clerkfake.NewUser("user_deleted", "Ghost", 9000),
		clerkfake.NewUser("user_newer", "Stale", 1000),
	)
	db := newDatabase(t, "ondemand")
	users := db.store
	ctx := context.Background()
	if err := clerkfake.Seed(ctx, users, clerkfake.NewUser("user_deleted", "Ghost", 1000), clerkfake.NewUser("user_newer", "Newer", 5000)); err != nil {
		t.Fatal(err)
	}
	if _, err := users.DeleteUser(ctx, "user_deleted", 2000); err != nil {
		t.Fatal(err)
	}
	svc := startService(t, map[string]string{
		"PORT":                         "0",
		"CLERK_WEBHOOK_SIGNING_SECRET": newSecret(t),
		"INNGEST_DEV":                  "http://127.0.0.1:1",
		"MONGODB_URI":                  db.uri,
		"CLERK_SECRET_KEY":             key,
		"CLERK_API_URL":                fake.URL,
		"SYNC_API_TOKEN":               token,
	})

	tests := []struct {
		name, id, token string
		want            int
		wantName        string        // full_name in the answer ("" to skip)
		wantOutcome     store.Outcome // "" to skip
	}{
		{"missing user appears", "user_missing", token, 200, "Fresh Doe", store.Inserted},
		{"again: nothing newer", "user_missing", token, 200, "Fresh Doe", store.Skipped},
		{"no token", "user_missing", "", 401, "", ""},
		{"wrong token", "user_missing", token + "x", 401, "", ""},
		{"deleted user stays deleted", "user_deleted", token, 410, "", store.Skipped},
		{"newer stored version kept", "user_newer", token, 200, "Newer Doe", store.Skipped},
		{"Clerk has no such user", "user_nobody", token, 404, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, svc.url+"/api/sync/users/"+tt.id, nil)
			if tt.token != "" {
				req.Header.Set("Authorization", "Bearer "+tt.token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Fatalf("POST /api/sync/users/%s = %d %s; want %d", tt.id, resp.StatusCode, body, tt.want)
			}
			var got syncedUser
			_ = json.Unmarshal(body, &got)
			if tt.wantName != "" && got.FullName != tt.wantName {
				t.Errorf("POST /api/sync/users/%s full_name = %q; want %q", tt.id, got.FullName, tt.wantName)
			}
			if tt.wantOutcome != "" && got.Outcome != tt.wantOutcome {
				t.Errorf("POST /api/sync/users/%s outcome = %q; want %q", tt.id, got.Outcome, tt.wantOutcome)
			}
		})
	}
	for id, want := range map[string]string{"user_missing": "Fresh Doe", "user_newer": "Newer Doe"} {
		if u, err := users.Get(ctx, id); err != nil || u.FullName != want {
			t.Errorf("stored %s = %+v, %v; want full name %q", id, u, err, want)
		}
	}
	if u, err := users.Get(ctx, "user_deleted"); err != nil || !u.Deleted || u.FullName != "" {
		t.Errorf("stored user_deleted = %+v, %v; want a tombstone", u, err)
	}
	checkSyncMetrics(t, svc.url, map[string]float64{"synced": 3, "gone": 1, "unauthorized": 2, "not_found": 1, "invalid_id": 0}, 7)
}

func TestSyncRouteOffWithoutToken(t *testing.T) {
	parallel(t)
	svc := startService(t, map[string]string{
		"PORT":                         "0",
		"CLERK_WEBHOOK_SIGNING_SECRET": newSecret(t),
		"INNGEST_DEV":                  "http://127.0.0.1:1",
		"DATA_DIR":                     t.TempDir(),
	})
	resp, err := http.Post(svc.url+"/api/sync/users/user_x", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("POST /api/sync/users/user_x without SYNC_API_TOKEN = %d; want 404 (the route is off)", resp.StatusCode)
	}
}

// syncService starts the whole service with the on-demand sync on, against fake, with JSON
// logs; vars override its settings. It returns the service, its bearer token and the store it
// writes to.
func syncService(t *testing.T, fake *clerkfake.Server, vars map[string]string) (*service, string, *store.Store) {
	t.Helper()
	token := strings.Repeat("t0k3n", 8)
	db := newDatabase(t, "sync")
	env := map[string]string{
		"PORT":                         "0",
		"CLERK_WEBHOOK_SIGNING_SECRET": newSecret(t),
		"INNGEST_DEV":                  "http://127.0.0.1:1",
		"MONGODB_URI":                  db.uri,
		"CLERK_SECRET_KEY":             fake.Key,
		"CLERK_API_URL":                fake.URL,
		"SYNC_API_TOKEN":               token,
		"LOG_FORMAT":                   "json",
	}
	for k, v := range vars {
		env[k] = v
	}
	return startService(t, env), token, db.store
}

// syncedUser is the answer of POST /api/sync/users/{id} that syncs: the user as stored, and
// what this call's write did (syncapi.go).
type syncedUser struct {
	ID       string        `json:"id"`
	FullName string        `json:"full_name"`
	Username string        `json:"username,omitempty"`
	Deleted  bool          `json:"deleted,omitempty"`
	Outcome  store.Outcome `json:"outcome"`
}

// syncAnswer is one answer of POST /api/sync/users/{id}.
type syncAnswer struct {
	status     int
	retryAfter string
	body       string
}

// postSync sends POST /api/sync/users/<rawID> (rawID as it goes on the wire) with token.
func postSync(t *testing.T, base, token, rawID string) syncAnswer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/api/sync/users/"+rawID, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Errorf("POST /api/sync/users/%s: %v", cutForLog(rawID, 40), err)
		return syncAnswer{}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return syncAnswer{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After"), body: string(body)}
}

// checkSyncMetrics compares clerksync_sync_requests_total by result with want, and the
// duration histogram's count with wantAnswers.
func checkSyncMetrics(t *testing.T, base string, want map[string]float64, wantAnswers float64) {
	t.Helper()
	got := metricstest.Scrape(t, base)
	for result, n := range want {
		if v, ok := got["clerksync_sync_requests_total"]["result="+result]; !ok || v != n {
			t.Errorf("GET /metrics: clerksync_sync_requests_total{result=%q} = %g (present %v); want %g", result, v, ok, n)
		}
	}
	if v := got["clerksync_sync_request_duration_seconds"][""]; v != wantAnswers {
		t.Errorf("GET /metrics: clerksync_sync_request_duration_seconds count = %g; want %g", v, wantAnswers)
	}
}

// logLines returns the service's JSON log lines whose msg contains msg.
func logLines(t *testing.T, svc *service, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(svc.log()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) == nil && strings.Contains(fmt.Sprint(line["msg"]), msg) {
			out = append(out, line)
		}
	}
	return out
}

// TestSyncRefusesInvalidIDs: only Clerk's user id shape reaches Clerk; anything else is 400,
// with an answer that says the shape and does not repeat the id, and a log line that keeps
// only its start.
func TestSyncRefusesInvalidIDs(t *testing.T) {
	parallel(t)
	fake := clerkfake.New(t, "sk_test_ids", clerkfake.NewUser("user_abc", "Abc", 1000), clerkfake.NewUser("user_29w83sxmDNGwOuEthce5gg56FcC", "Real", 1000))
	svc, token, users := syncService(t, fake, nil)
	huge := "user_" + strings.Repeat("A", 60<<10)
	bad := []string{
		"user_abc%3Fexpand=x",       // reached Clerk as GET /v1/users/user_abc?expand=x
		"user_abc%2F..%2F..%2Fjwks", // another path
		"user_abc%23x",
		"..",
		"user_",
		"user_" + strings.Repeat("a", 65),
		"user_ab-c",
		"user_ab_c",
		"USER_abc",
		"org_2abc",
		"user_%C3%A9",
		huge,
	}
	for _, id := range bad {
		got := postSync(t, svc.url, token, id)
		if got.status != http.StatusBadRequest || !strings.Contains(got.body, "user_ followed by 1 to 64 letters or digits") {
			t.Errorf("POST /api/sync/users/%s = %d %s; want 400 saying the id's shape", cutForLog(id, 40), got.status, cutForLog(got.body, 200))
		}
		if len(id) > 40 && strings.Contains(got.body, id[:40]) {
			t.Errorf("POST /api/sync/users/%s answered the id back: %s", cutForLog(id, 40), cutForLog(got.body, 200))
		}
	}
	if reqs := fake.Requests(); len(reqs) != 0 {
		t.Errorf("Clerk got %q; want no request for an invalid id", reqs)
	}
	for _, id := range []string{"user_abc", "user_29w83sxmDNGwOuEthce5gg56FcC"} {
		if got := postSync(t, svc.url, token, id); got.status != http.StatusOK {
			t.Errorf("POST /api/sync/users/%s = %d %s; want 200", id, got.status, got.body)
		}
	}
	if u, err := users.Get(t.Context(), "user_abc"); err != nil || u.FullName != "Abc Doe" {
		t.Errorf("stored user_abc = %+v, %v; want Abc Doe", u, err)
	}
	checkSyncMetrics(t, svc.url, map[string]float64{"invalid_id": float64(len(bad)), "synced": 2}, float64(len(bad)+2))
	// No log line carries more than a short start of the 60 KB id.
	if logs := svc.log(); strings.Contains(logs, huge[:300]) {
		t.Errorf("the log holds 300+ bytes of the 60 KB id; want it cut")
	}
	if lines := logLines(t, svc, "not a Clerk user id"); len(lines) != len(bad) {
		t.Errorf("%d log lines about an invalid id; want %d", len(lines), len(bad))
	}
}

// TestSyncOtherUserAnswered: when Clerk's answer carries another id than asked, nothing is
// written, the caller gets 502, and an error is logged.
func TestSyncOtherUserAnswered(t *testing.T) {
	parallel(t)
	fake := clerkfake.New(t, "sk_test_other", clerkfake.NewUser("user_asked", "Asked", 1000), clerkfake.NewUser("user_other", "Other", 1000))
	fake.AnswerAs("user_asked", "user_other")
	svc, token, users := syncService(t, fake, nil)
	if got := postSync(t, svc.url, token, "user_asked"); got.status != http.StatusBadGateway {
		t.Errorf("POST /api/sync/users/user_asked answered by user_other = %d %s; want 502", got.status, got.body)
	}
	for _, id := range []string{"user_asked", "user_other"} {
		if u, err := users.Get(t.Context(), id); err == nil {
			t.Errorf("stored %s = %+v; want nothing written", id, u)
		}
	}
	if lines := logLines(t, svc, "another user"); len(lines) != 1 || lines[0]["level"] != "ERROR" {
		t.Errorf("log lines about another user's answer = %v; want one at ERROR", lines)
	}
	checkSyncMetrics(t, svc.url, map[string]float64{"other_user": 1, "synced": 0}, 1)
}

// TestSyncKeyRefused: a wrong or revoked CLERK_SECRET_KEY (Clerk answers 401) is reported as
// the configuration error it is: 503 with a long Retry-After and an error naming
// CLERK_SECRET_KEY (not the key), one error log line for repeated requests, and a metric;
// whether Clerk refuses the instance check or the user read.
func TestSyncKeyRefused(t *testing.T) {
	parallel(t)
	for _, recorded := range []bool{false, true} {
		t.Run(fmt.Sprintf("instance recorded %v", recorded), func(t *testing.T) {
			t.Parallel() // a service and a database of its own
			const revoked = "sk_test_revokedKeyValue42"
			fake := clerkfake.New(t, "sk_test_valid", clerkfake.NewUser("user_a", "A", 1000))
			svc, token, users := syncService(t, fake, map[string]string{"CLERK_SECRET_KEY": revoked})
			if recorded {
				if _, err := users.RecordClerkInstance(t.Context(), clerkfake.DefaultInstance, time.Now()); err != nil {
					t.Fatal(err)
				}
			}
			const n = 3
			for range n {
				got := postSync(t, svc.url, token, "user_a")
				if got.status != http.StatusServiceUnavailable || got.retryAfter != "300" {
					t.Errorf("POST /api/sync/users/user_a with a refused key = %d Retry-After %q; want 503 Retry-After 300", got.status, got.retryAfter)
				}
				if !strings.Contains(got.body, "CLERK_SECRET_KEY") || strings.Contains(got.body, revoked) {
					t.Errorf("POST /api/sync/users/user_a with a refused key: %s; want an error naming CLERK_SECRET_KEY, not the key", got.body)
				}
			}
			lines := logLines(t, svc, "refused CLERK_SECRET_KEY")
			if len(lines) != 1 || lines[0]["level"] != "ERROR" {
				t.Errorf("log lines about the refused key after %d requests = %v; want one at ERROR", n, lines)
			}
			if strings.Contains(svc.log(), revoked) {
				t.Errorf("the log holds the secret key")
			}
			checkSyncMetrics(t, svc.url, map[string]float64{"clerk_key_refused": n, "clerk_unavailable": 0}, n)
		})
	}
}

// TestSyncSharesInstanceCheck: concurrent syncs share one check of the Clerk instance instead
// of queueing behind a lock held across Clerk's answer. With a 2 s GET /v1/jwks, 30
// concurrent syncs all get the check's answer (409 while the key is another instance's, then
// 200) in about 2 s, from one request to Clerk each time; a passed check is remembered.
func TestSyncSharesInstanceCheck(t *testing.T) {
	parallel(t)
	const n = 30
	var fakeUsers []clerkfake.User
	for i := range n {
		fakeUsers = append(fakeUsers, clerkfake.NewUser(fmt.Sprintf("user_conc%02d", i), "Conc", 1000))
	}
	fake := clerkfake.New(t, "sk_test_concurrent", fakeUsers...)
	svc, token, users := syncService(t, fake, nil)
	if _, err := users.RecordClerkInstance(t.Context(), clerkfake.DefaultInstance, time.Now()); err != nil {
		t.Fatal(err)
	}
	fake.Delay("GET /v1/jwks", 2*time.Second)
	jwksCalls := func() int {
		k := 0
		for _, r := range fake.Requests() {
			if r == "GET /v1/jwks" {
				k++
			}
		}
		return k
	}
	burst := func(want int) {
		t.Helper()
		before := jwksCalls()
		start := time.Now()
		statuses := make([]int, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { statuses[i] = postSync(t, svc.url, token, fmt.Sprintf("user_conc%02d", i)).status })
		}
		wg.Wait()
		// Serialised, 30 checks of 2 s would take a minute; shared, one takes 2 s.
		if took := time.Since(start); took > 6*time.Second {
			t.Errorf("%d concurrent syncs took %s; want about 2 s (one shared instance check)", n, took.Round(time.Millisecond))
		}
		for i, got := range statuses {
			if got != want {
				t.Errorf("POST /api/sync/users/user_conc%02d = %d; want %d", i, got, want)
			}
		}
		// All 30 arrive while the first check is in flight (2 s): they share it. One more
		// is allowed for a straggler on a loaded machine.
		if calls := jwksCalls() - before; calls < 1 || calls > 2 {
			t.Errorf("%d concurrent syncs made %d GET /v1/jwks; want 1 shared check", n, calls)
		}
	}
	fake.SetInstance("ins_otherInstance2kXcLeRk0002")
	burst(http.StatusConflict)
	fake.SetInstance(clerkfake.DefaultInstance)
	burst(http.StatusOK)
	before := jwksCalls()
	if got := postSync(t, svc.url, token, "user_conc00"); got.status != http.StatusOK {
		t.Errorf("POST /api/sync/users/user_conc00 after the check passed = %d %s; want 200", got.status, got.body)
	}
	if calls := jwksCalls() - before; calls != 0 {
		t.Errorf("a sync after the check passed made %d GET /v1/jwks; want 0 (the pass is remembered)", calls)
	}
	checkSyncMetrics(t, svc.url, map[string]float64{"other_instance": n, "synced": n + 1, "clerk_unavailable": 0}, 2*n+1)
}
