package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"clerksync/backfill"
	"clerksync/clerk"
	"clerksync/clerk/clerkfake"
	"clerksync/reconcile"
	"clerksync/store"
)

// backfillKey is the secret key the Clerk stand-in of these tests expects.
const backfillKey = "sk_test_backfill"

// tally is a backfill summary as printed.
type tally struct {
	Created, Updated, Unchanged, Skipped int
	Reasons                              map[string]int
}

var (
	summaryLineRE = regexp.MustCompile(`(?m)^  (created|updated|unchanged|skipped) +(\d+)`)
	reasonLineRE  = regexp.MustCompile(`(?m)^    +(\d+)  (.+)$`)
)

// parseSummary reads the summary backfill printed at the end of out.
func parseSummary(t *testing.T, out string) tally {
	t.Helper()
	i := strings.LastIndex(out, "backfill done:")
	if i < 0 {
		i = strings.LastIndex(out, "backfill stopped early:")
	}
	if i < 0 {
		t.Fatalf("no summary in the output:\n%s", out)
	}
	out = out[i:]
	var got tally
	for _, m := range summaryLineRE.FindAllStringSubmatch(out, -1) {
		n, _ := strconv.Atoi(m[2])
		switch m[1] {
		case "created":
			got.Created = n
		case "updated":
			got.Updated = n
		case "unchanged":
			got.Unchanged = n
		case "skipped":
			got.Skipped = n
		}
	}
	for _, m := range reasonLineRE.FindAllStringSubmatch(out, -1) {
		if got.Reasons == nil {
			got.Reasons = map[string]int{}
		}
		n, _ := strconv.Atoi(m[1])
		got.Reasons[m[2]] = n
	}
	return got
}

// runBackfillCmd runs `clerk-user-sync backfill args...` with vars as its configuration and
// returns its stdout, stderr and error (see command).
func runBackfillCmd(ctx context.Context, t *testing.T, vars map[string]string, args ...string) (string, string, error) {
	t.Helper()
	return command(ctx, t, vars, append([]string{"backfill"}, args...)...)
}

// failedWith reports whether a command failed with target's message in its error: the
// black-box form of errors.Is.
func failedWith(err, target error) bool {
	return err != nil && strings.Contains(err.Error(), target.Error())
}

// clerkUsers returns n stand-in users user_01... created in that order, updated at 1000.
func clerkUsers(n int) []clerkfake.User {
	users := make([]clerkfake.User, n)
	for i := range users {
		id := fmt.Sprintf("user_%02d", i+1)
		users[i] = clerkfake.User{ID: id, FirstName: "User", LastName: strconv.Itoa(i + 1), Email: id + "@example.com", CreatedAt: 500, UpdatedAt: 1000}
	}
	return users
}

// writeUser writes a user to st as the webhook functions would.
func writeUser(t *testing.T, st *store.Store, id, first string, updatedAt int64) {
	t.Helper()
	u, err := clerk.User{ID: id, FirstName: &first, CreatedAt: 500, UpdatedAt: updatedAt}.StoreUser(0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.UpsertUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
}

func TestBackfillFromAPI(t *testing.T) {
	parallel(t)
	deleted := map[string]int{backfill.SkipDeleted: 1}
	tests := []struct {
		name         string
		prepare      func(t *testing.T, st *store.Store)
		first, again tally
	}{
		{"empty database", nil, tally{Created: 5}, tally{Unchanged: 5}},
		{
			"older stored user",
			func(t *testing.T, st *store.Store) { writeUser(t, st, "user_02", "Old", 700) },
			tally{Created: 4, Updated: 1}, tally{Unchanged: 5},
		},
		{
			"newer webhook write and a tombstone",
			func(t *testing.T, st *store.Store) {
				writeUser(t, st, "user_03", "Webhook", 3000)
				if _, err := st.DeleteUser(context.Background(), "user_05", 2000); err != nil {
					t.Fatal(err)
				}
			},
			tally{Created: 3, Unchanged: 1, Skipped: 1, Reasons: deleted},
			tally{Unchanged: 4, Skipped: 1, Reasons: deleted},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel() // a database of its own
			db := newDatabase(t, "backfill")
			st := db.store
			if tt.prepare != nil {
				tt.prepare(t, st)
			}
			fake := clerkfake.New(t, backfillKey, clerkUsers(5)...)
			vars := map[string]string{"MONGODB_URI": db.uri, "CLERK_SECRET_KEY": backfillKey, "CLERK_API_URL": fake.URL}

			for run, want := range []tally{tt.first, tt.again} {
				stdout, stderr, err := runBackfillCmd(t.Context(), t, vars, "-page-size", "2")
				if err != nil {
					t.Fatalf("backfill run %d = %v; stderr:\n%s", run+1, err, stderr)
				}
				if got := parseSummary(t, stdout); !reflect.DeepEqual(got, want) {
					t.Errorf("backfill run %d summary = %+v; want %+v; stdout:\n%s", run+1, got, want, stdout)
				}
				// Not a terminal: plain progress lines, one per page.
				for _, line := range []string{"backfill: 2/5 users:", "backfill: 4/5 users:", "backfill: 5/5 users:"} {
					if !strings.Contains(stdout, line) {
						t.Errorf("backfill run %d output has no progress line %q:\n%s", run+1, line, stdout)
					}
				}
			}
			if u, err := st.Get(context.Background(), "user_01"); err != nil || u.FullName != "User 1" || u.Email == nil || *u.Email != "user_01@example.com" {
				t.Errorf("user_01 after backfill = %+v, %v; want full_name \"User 1\", email user_01@example.com", u, err)
			}
			if tt.name == "newer webhook write and a tombstone" {
				if u, _ := st.Get(context.Background(), "user_03"); u.FullName != "Webhook" {
					t.Errorf("user_03 full_name = %q; want the newer webhook write kept", u.FullName)
				}
				if u, _ := st.Get(context.Background(), "user_05"); !u.Deleted {
					t.Errorf("user_05 = %+v; want it to stay deleted", u)
				}
			}
		})
	}
}

// TestBackfillInterrupted: a backfill interrupted between two pages reports how far it got;
// run again, it finishes, and what the first run wrote is unchanged.
func TestBackfillInterrupted(t *testing.T) {
	parallel(t)
	db := newDatabase(t, "interrupted")
	fake := clerkfake.New(t, backfillKey, clerkUsers(5)...)
	vars := map[string]string{"MONGODB_URI": db.uri, "CLERK_SECRET_KEY": backfillKey, "CLERK_API_URL": fake.URL}

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var once sync.Once
	fake.BeforeList(func(offset int) {
		if offset == 2 {
			once.Do(func() {
				cancel()                           // Ctrl-C: the command gets SIGINT
				time.Sleep(200 * time.Millisecond) // let it see the signal before this page's answer
			})
		}
	})
	stdout, _, err := runBackfillCmd(ctx, t, vars, "-page-size", "2")
	if err == nil || !strings.Contains(err.Error(), "interrupted after 2 users") {
		t.Fatalf("interrupted backfill = %v; want an error saying it was interrupted after 2 users", err)
	}
	if got, want := parseSummary(t, stdout), (tally{Created: 2}); !reflect.DeepEqual(got, want) {
		t.Errorf("interrupted backfill summary = %+v; want %+v", got, want)
	}
	if !strings.Contains(stdout, "backfill stopped early: 2 users") {
		t.Errorf("interrupted backfill output does not say it stopped early:\n%s", stdout)
	}

	stdout, stderr, err := runBackfillCmd(t.Context(), t, vars, "-page-size", "2")
	if err != nil {
		t.Fatalf("backfill rerun = %v; stderr:\n%s", err, stderr)
	}
	if got, want := parseSummary(t, stdout), (tally{Created: 3, Unchanged: 2}); !reflect.DeepEqual(got, want) {
		t.Errorf("backfill rerun summary = %+v; want %+v", got, want)
	}
}

func TestBackfillFromExport(t *testing.T) {
	parallel(t)
	db := newDatabase(t, "export")
	vars := map[string]string{"MONGODB_URI": db.uri}
	export := filepath.Join("testdata", "clerk-users-export.csv")
	invalid := map[string]int{backfill.SkipInvalid: 1}
	for run, want := range []tally{
		{Created: 3, Skipped: 1, Reasons: invalid},
		{Unchanged: 3, Skipped: 1, Reasons: invalid},
	} {
		stdout, stderr, err := runBackfillCmd(t.Context(), t, vars, "--from-export", export)
		if err != nil {
			t.Fatalf("backfill --from-export run %d = %v; stderr:\n%s", run+1, err, stderr)
		}
		if got := parseSummary(t, stdout); !reflect.DeepEqual(got, want) {
			t.Errorf("backfill --from-export run %d summary = %+v; want %+v; stdout:\n%s", run+1, got, want, stdout)
		}
		if !strings.Contains(stderr, "export row skipped") || !strings.Contains(stderr, "line=5") {
			t.Errorf("backfill --from-export run %d log does not name the skipped row (line 5):\n%s", run+1, stderr)
		}
	}

	st := db.store
	email := func(s string) *string { return &s }
	tests := []struct {
		id   string
		want store.User
	}{
		{"user_2exportAda", store.User{ID: "user_2exportAda", Email: email("ada@example.com"), FullName: "Ada Lovelace", Username: "ada", ClerkUsername: "ada", UpdatedAt: 1}},
		{"user_2exportGrace", store.User{ID: "user_2exportGrace", Email: email("grace@example.com"), FullName: "Grace Hopper", Username: "grace", UpdatedAt: 1}},
		{"user_2exportPhone", store.User{ID: "user_2exportPhone", Username: "user_2exportphone", UpdatedAt: 1}},
	}
	for _, tt := range tests {
		got, err := st.Get(context.Background(), tt.id)
		if err != nil {
			t.Fatalf("Get(%s) = %v", tt.id, err)
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Get(%s) = %+v; want %+v", tt.id, got, tt.want)
		}
	}
}

func TestBackfillRefuses(t *testing.T) {
	parallel(t)
	db := newDatabase(t, "refuses")
	fake := clerkfake.New(t, backfillKey, clerkUsers(2)...)
	notExport := filepath.Join(t.TempDir(), "users.json")
	if err := os.WriteFile(notExport, []byte(`[{"id":"user_1"}]`), 0o600); err != nil {
		t.Fatal(err)
	}
	base := map[string]string{"MONGODB_URI": db.uri, "CLERK_SECRET_KEY": backfillKey, "CLERK_API_URL": fake.URL}
	tests := []struct {
		name    string
		change  map[string]string
		args    []string
		wantErr string
	}{
		{"no secret key and no export", map[string]string{"CLERK_SECRET_KEY": ""}, nil, "CLERK_SECRET_KEY is not set"},
		{"publishable key", map[string]string{"CLERK_SECRET_KEY": "pk_test_abc"}, nil, "sk_live_"},
		{"wrong secret key", map[string]string{"CLERK_SECRET_KEY": "sk_test_wrong"}, nil, "authentication_invalid"},
		{"bad API URL", map[string]string{"CLERK_API_URL": "api.clerk.com"}, nil, "CLERK_API_URL"},
		{"bad MongoDB URI", map[string]string{"MONGODB_URI": "postgres://x"}, nil, "mongodb://"},
		{"no MongoDB URI outside dev mode", map[string]string{"MONGODB_URI": ""}, nil, "MONGODB_URI is not set"},
		{"missing export", nil, []string{"--from-export", "nope.csv"}, "--from-export"},
		{"not an export", nil, []string{"--from-export", notExport}, "not a Clerk user export"},
		{"page size too big", nil, []string{"-page-size", "501"}, "-page-size 501"},
		{"stray argument", nil, []string{"now"}, "no arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vars := map[string]string{}
			for k, v := range base {
				vars[k] = v
			}
			for k, v := range tt.change {
				vars[k] = v
			}
			vars["DATA_DIR"] = t.TempDir()
			_, _, err := runBackfillCmd(t.Context(), t, vars, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("backfill = %v; want an error containing %q", err, tt.wantErr)
			}
		})
	}
	if n, _ := db.store.Count(context.Background()); n != 0 {
		t.Errorf("users after refused backfills = %d; want 0", n)
	}
}

// inngestFunctionCount returns how many functions the service at base offers Inngest, from
// its serve handler's introspection (GET /api/inngest).
func inngestFunctionCount(t *testing.T, base string) int {
	t.Helper()
	resp, err := http.Get(base + "/api/inngest")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var in struct {
		FunctionCount *int `json:"function_count"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&in); err != nil || in.FunctionCount == nil {
		t.Fatalf("GET /api/inngest: no function_count (%v)", err)
	}
	return *in.FunctionCount
}

// TestReconcileFunctionOnlyWithSecretKey: reconcile-users-with-clerk and
// reconcile-organizations-with-clerk are served only when CLERK_SECRET_KEY is set.
func TestReconcileFunctionOnlyWithSecretKey(t *testing.T) {
	parallel(t)
	vars := func(key string) map[string]string {
		return map[string]string{
			"PORT":                         "0",
			"CLERK_WEBHOOK_SIGNING_SECRET": newSecret(t),
			"INNGEST_DEV":                  "http://127.0.0.1:1",
			"DATA_DIR":                     t.TempDir(),
			"CLERK_SECRET_KEY":             key,
			"RECONCILE_SCHEDULE":           "TZ=Europe/Paris 30 4 * * *",
		}
	}
	without := startService(t, vars(""))
	with := startService(t, vars("sk_test_reconcile"))
	if got, want := inngestFunctionCount(t, with.url), inngestFunctionCount(t, without.url)+2; got != want {
		t.Errorf("functions served with CLERK_SECRET_KEY = %d; want %d (two more than without)", got, want)
	}
	if !strings.Contains(with.log(), "reconciliation with Clerk scheduled") {
		t.Errorf("the log does not say the reconciliation is scheduled:\n%s", with.stderr)
	}
}

// TestBackfillOrganizations: from the API, backfill imports the organizations and their
// memberships after the users and sums them up; with no instance recorded, a database whose
// live organizations Clerk's list lacks is refused before anything is written.
func TestBackfillOrganizations(t *testing.T) {
	parallel(t)
	db, foreignDB := newDatabase(t, "orgs"), newDatabase(t, "foreignorgs")
	fake := clerkfake.New(t, backfillKey, clerkUsers(2)...)
	fake.PutOrganization(clerkfake.NewOrganization("org_01", "Acme", 1000))
	fake.PutMembership(clerkfake.NewMembership("org_01", "user_01", "org:admin", 1000))
	fake.PutMembership(clerkfake.NewMembership("org_01", "user_02", "org:member", 1000))
	vars := map[string]string{"MONGODB_URI": db.uri, "CLERK_SECRET_KEY": backfillKey, "CLERK_API_URL": fake.URL}
	stdout, stderr, err := runBackfillCmd(t.Context(), t, vars)
	if err != nil {
		t.Fatalf("backfill = %v; stderr:\n%s", err, stderr)
	}
	if got, want := parseSummary(t, stdout), (tally{Created: 2}); !reflect.DeepEqual(got, want) {
		t.Errorf("backfill summary of the users = %+v; want %+v; stdout:\n%s", got, want, stdout)
	}
	for _, line := range []string{
		"\norganizations: 1 (created 1, updated 0, unchanged 0, skipped 0)\n",
		"\nmemberships: 2 (created 2, updated 0, unchanged 0, skipped 0)\n",
	} {
		if !strings.Contains(stdout, line) {
			t.Errorf("backfill output has no line %q:\n%s", line, stdout)
		}
	}
	st := db.store
	if live, err := st.LiveMemberships(context.Background(), "org_01", ""); err != nil || len(live) != 2 {
		t.Errorf("live memberships of org_01 after backfill = %+v, %v; want 2", live, err)
	}

	foreign := foreignDB.store
	if err := clerkfake.SeedOrganizations(context.Background(), foreign, clerkfake.NewOrganization("org_x1", "X", 1000), clerkfake.NewOrganization("org_x2", "X", 1000)); err != nil {
		t.Fatal(err)
	}
	vars["MONGODB_URI"] = foreignDB.uri
	if _, _, err := runBackfillCmd(t.Context(), t, vars); !failedWith(err, reconcile.ErrFewShared) || !strings.Contains(err.Error(), "live organizations") {
		t.Fatalf("backfill into a database of other organizations = %v; want an error wrapping ErrFewShared naming the organizations", err)
	}
	if n, err := foreign.Count(context.Background()); n != 0 || err != nil {
		t.Errorf("users after the refused backfill = %d, %v; want 0", n, err)
	}
	if live, err := foreign.LiveOrganizationIDs(context.Background()); err != nil || !reflect.DeepEqual(live, []string{"org_x1", "org_x2"}) {
		t.Errorf("live organizations after the refused backfill = %q, %v; want org_x1, org_x2 alone", live, err)
	}
	if rec, err := foreign.ClerkInstance(context.Background()); rec != "" || err != nil {
		t.Errorf("ClerkInstance after the refused backfill = %q, %v; want none recorded", rec, err)
	}
}

// TestBackfillChecksInstance: from the API, backfill writes nothing with a key for another
// Clerk instance than the database follows, or whose users are not the database's; otherwise
// it records the instance the database follows from now on.
func TestBackfillChecksInstance(t *testing.T) {
	parallel(t)
	tests := []struct {
		name     string
		recorded string // the instance recorded before ("": none)
		stored   []string
		wantErr  error // nil: the backfill succeeds
	}{
		{"empty database: recorded", "", nil, nil},
		{"database sharing the users: recorded", "", []string{"user_01", "user_02"}, nil},
		{"another instance recorded", "ins_other", []string{"user_01"}, reconcile.ErrWrongInstance},
		{"no user shared", "", []string{"user_x1", "user_x2", "user_x3"}, reconcile.ErrFewShared},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel() // a database of its own
			db := newDatabase(t, "instance")
			st := db.store
			for _, id := range tt.stored {
				writeUser(t, st, id, "Stored", 700)
			}
			if tt.recorded != "" {
				if _, err := st.RecordClerkInstance(context.Background(), tt.recorded, time.Now()); err != nil {
					t.Fatal(err)
				}
			}
			fake := clerkfake.New(t, backfillKey, clerkUsers(5)...)
			vars := map[string]string{"MONGODB_URI": db.uri, "CLERK_SECRET_KEY": backfillKey, "CLERK_API_URL": fake.URL}
			stdout, stderr, err := runBackfillCmd(t.Context(), t, vars, "-page-size", "2")

			wantRecorded, wantCount := tt.recorded, int64(len(tt.stored))
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("backfill = %v; stderr:\n%s", err, stderr)
				}
				wantRecorded, wantCount = clerkfake.DefaultInstance, int64(len(tt.stored)+5-min(len(tt.stored), 2))
			} else {
				if !failedWith(err, tt.wantErr) || !strings.Contains(err.Error(), "CLERK_SECRET_KEY") {
					t.Fatalf("backfill = %v; want an error wrapping %v that says to check CLERK_SECRET_KEY", err, tt.wantErr)
				}
				if got := parseSummary(t, stdout); !reflect.DeepEqual(got, tally{}) {
					t.Errorf("refused backfill summary = %+v; want nothing counted", got)
				}
			}
			if rec, err := st.ClerkInstance(context.Background()); rec != wantRecorded || err != nil {
				t.Errorf("ClerkInstance after backfill = %q, %v; want %q", rec, err, wantRecorded)
			}
			if n, err := st.Count(context.Background()); n != wantCount || err != nil {
				t.Errorf("users after backfill = %d, %v; want %d", n, err, wantCount)
			}
		})
	}
}

// TestBackfillAllowMassDelete: with no Clerk instance recorded, a backfill into a database
// whose users Clerk's list lacks is refused, saying how to let one backfill through; with
// --allow-mass-delete that one backfill writes and records the instance. The flag is refused
// with --from-export, which checks nothing.
func TestBackfillAllowMassDelete(t *testing.T) {
	parallel(t)
	db := newDatabase(t, "allow")
	st := db.store
	for _, id := range []string{"user_x1", "user_x2", "user_x3"} {
		writeUser(t, st, id, "Stored", 700)
	}
	fake := clerkfake.New(t, backfillKey, clerkUsers(5)...)
	vars := map[string]string{"MONGODB_URI": db.uri, "CLERK_SECRET_KEY": backfillKey, "CLERK_API_URL": fake.URL}
	if _, _, err := runBackfillCmd(t.Context(), t, vars); !failedWith(err, reconcile.ErrFewShared) || !strings.Contains(err.Error(), "backfill --allow-mass-delete") {
		t.Fatalf("backfill into a database of other users = %v; want ErrFewShared saying to run backfill --allow-mass-delete", err)
	}
	if _, _, err := runBackfillCmd(t.Context(), t, vars, "--allow-mass-delete", "--from-export", "users.csv"); err == nil || !strings.Contains(err.Error(), "--allow-mass-delete is for an import from the API") {
		t.Errorf("backfill --allow-mass-delete --from-export = %v; want it refused", err)
	}
	if n, err := st.Count(context.Background()); n != 3 || err != nil {
		t.Fatalf("users after the refused backfills = %d, %v; want the 3 stored", n, err)
	}
	stdout, stderr, err := runBackfillCmd(t.Context(), t, vars, "--allow-mass-delete")
	if err != nil {
		t.Fatalf("backfill --allow-mass-delete = %v; stderr:\n%s", err, stderr)
	}
	if got, want := parseSummary(t, stdout), (tally{Created: 5}); !reflect.DeepEqual(got, want) {
		t.Errorf("backfill --allow-mass-delete summary = %+v; want %+v", got, want)
	}
	if rec, err := st.ClerkInstance(context.Background()); rec != clerkfake.DefaultInstance || err != nil {
		t.Errorf("ClerkInstance after backfill --allow-mass-delete = %q, %v; want %q", rec, err, clerkfake.DefaultInstance)
	}
	if n, err := st.Count(context.Background()); n != 8 || err != nil {
		t.Errorf("users after backfill --allow-mass-delete = %d, %v; want 8", n, err)
	}
}

// TestBackfillFromExportKeepsWhatItLacks: a newer export row updates a stored user but keeps
// its picture and created_at, which the export does not have.
func TestBackfillFromExportKeepsWhatItLacks(t *testing.T) {
	parallel(t)
	db := newDatabase(t, "exportkeeps")
	st := db.store
	first, picture := "Webhook", "https://img.clerk.com/user_01"
	u, err := clerk.User{ID: "user_01", FirstName: &first, ImageURL: &picture, CreatedAt: 500, UpdatedAt: 700}.StoreUser(0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.UpsertUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	export := filepath.Join(t.TempDir(), "users.csv")
	if err := os.WriteFile(export, []byte("id,first_name,updated_at\nuser_01,Exported,2024-06-01T05:34:22Z\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, err := runBackfillCmd(t.Context(), t, map[string]string{"MONGODB_URI": db.uri}, "--from-export", export)
	if err != nil {
		t.Fatalf("backfill --from-export = %v; stderr:\n%s", err, stderr)
	}
	if got, want := parseSummary(t, stdout), (tally{Updated: 1}); !reflect.DeepEqual(got, want) {
		t.Errorf("backfill --from-export summary = %+v; want %+v", got, want)
	}
	got, err := st.Get(context.Background(), "user_01")
	if err != nil || got.FullName != "Exported" || got.ProfilePicture != picture || got.CreatedAt != 500 {
		t.Errorf("user_01 = %+v, %v; want full_name \"Exported\" from the export, profile_picture %q and created_at 500 kept", got, err, picture)
	}
}
