package reconcile_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"clerksync/clerk/clerkfake"
	"clerksync/reconcile"
	"clerksync/store"
)

// foreignInstance is the instance id of the stand-in for a Clerk instance that is not the
// database's.
const foreignInstance = "ins_foreign2kXcLeRkOtHeR0002"

// foreignUsers returns n users of another instance, none of them in fakeUsers.
func foreignUsers(n int) []clerkfake.User {
	users := make([]clerkfake.User, n)
	for i := range users {
		users[i] = clerkfake.NewUser(fmt.Sprintf("user_foreign%03d", i+1), "Foreign", 1000)
	}
	return users
}

// databaseState is what the tests of refused runs compare before and after: every document,
// live or not, with its data.
func databaseState(t *testing.T, st *store.Store, ids []string) (count int64, users map[string]store.User) {
	t.Helper()
	n, err := st.Count(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	users = map[string]store.User{}
	for _, id := range ids {
		users[id] = get(t, st, id)
	}
	return n, users
}

func ids(users []clerkfake.User) []string {
	out := make([]string, len(users))
	for i, u := range users {
		out[i] = u.ID
	}
	return out
}

// userRequests returns the GET /v1/users... requests (lists, counts and single users) the
// stand-in answered.
func userRequests(fake *clerkfake.Server) []string {
	var got []string
	for _, r := range fake.Requests() {
		if strings.HasPrefix(r, "GET /v1/users") {
			got = append(got, r)
		}
	}
	return got
}

// TestReconcileForeignInstance: a valid key for another Clerk instance, larger than the
// database and sharing none of its users, neither writes nor deletes anything. (Before the
// survey and the before-run cap, the 541 users inserted first raised the cap to 60.1 and every
// one of the 60 real users was tombstoned.)
func TestReconcileForeignInstance(t *testing.T) {
	t.Parallel()
	stored := fakeUsers(60, 1000)
	tests := []struct {
		name     string
		recorded string // the instance recorded before the run ("": none)
		allow    bool
		// wantErr: the run fails with ErrWrongInstance before reading any user; otherwise it
		// reads the list once (the survey) and refuses.
		wantErr bool
	}{
		{name: "no instance recorded: the survey refuses"},
		{name: "another instance recorded: refused before reading users", recorded: clerkfake.DefaultInstance, wantErr: true},
		{name: "the override does not lift a recorded instance", recorded: clerkfake.DefaultInstance, allow: true, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := openStore(t)
			seed(t, st, stored...)
			if tt.recorded != "" {
				if _, err := st.RecordClerkInstance(t.Context(), tt.recorded, time.Now()); err != nil {
					t.Fatal(err)
				}
			}
			wantCount, wantUsers := databaseState(t, st, ids(stored))
			fake := clerkfake.New(t, testKey, foreignUsers(541)...)
			fake.SetInstance(foreignInstance)

			got, err := newReconciler(t, st, fake, reconcile.Config{PageSize: 100, MaxDeleteShare: 0.1, AllowMassDelete: tt.allow}).Run(t.Context())
			if tt.wantErr {
				if !errors.Is(err, reconcile.ErrWrongInstance) {
					t.Fatalf("Run = %+v, %v; want an error wrapping ErrWrongInstance", got, err)
				}
				for _, want := range []string{foreignInstance, tt.recorded, "CLERK_SECRET_KEY", "clerk-user-sync forget-clerk-instance", `mongosh "$MONGODB_URI" --eval 'db.sync_metadata.deleteOne({_id: "clerk_instance"})'`} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("Run error %q does not say %q", err, want)
					}
				}
				if reqs := userRequests(fake); len(reqs) != 0 {
					t.Errorf("users requests = %q; want none (refused before reading any user)", reqs)
				}
			} else {
				if err != nil {
					t.Fatalf("Run = %v", err)
				}
				if want := (reconcile.Summary{RefusedForeign: true}); got != want {
					t.Errorf("Run = %+v; want %+v", got, want)
				}
				if reqs := listRequests(fake); len(reqs) != 6 {
					t.Errorf("list requests = %d; want 6 (the survey: 541 users, 100 a page)", len(reqs))
				}
				for _, r := range userRequests(fake) {
					if strings.HasPrefix(r, "GET /v1/users/user_") {
						t.Errorf("request %q; want no deletion confirmed", r)
					}
				}
			}
			count, users := databaseState(t, st, ids(stored))
			if count != wantCount {
				t.Errorf("documents after Run = %d; want %d (nothing inserted or deleted)", count, wantCount)
			}
			for _, id := range ids(stored) {
				if !reflect.DeepEqual(users[id], wantUsers[id]) {
					t.Errorf("%s after Run = %+v; want it unchanged, %+v", id, users[id], wantUsers[id])
				}
			}
			if rec, err := st.ClerkInstance(t.Context()); rec != tt.recorded || err != nil {
				t.Errorf("ClerkInstance after Run = %q, %v; want %q (unchanged)", rec, err, tt.recorded)
			}
		})
	}
}

// TestReconcileOverlapOverride: RECONCILE_ALLOW_MASS_DELETE lets one run through a list that
// shares too few users with the database, and that run records the instance.
func TestReconcileOverlapOverride(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	seed(t, st, fakeUsers(6, 1000)...)
	fake := clerkfake.New(t, testKey, foreignUsers(20)...)
	fake.SetInstance(foreignInstance)
	got, err := newReconciler(t, st, fake, reconcile.Config{PageSize: 10, MaxDeleteShare: 0.1, AllowMassDelete: true}).Run(t.Context())
	if err != nil {
		t.Fatalf("Run = %v", err)
	}
	if want := (reconcile.Summary{Pages: 3, Counts: reconcile.Counts{Seen: 20, Inserted: 20, Deleted: 6}}); got != want {
		t.Errorf("Run = %+v; want %+v", got, want)
	}
	if rec, err := st.ClerkInstance(t.Context()); rec != foreignInstance || err != nil {
		t.Errorf("ClerkInstance after Run = %q, %v; want %q", rec, err, foreignInstance)
	}
}

// TestReconcileRecordsInstance: the first run that passes its checks records the instance;
// a later run with a key for another instance is refused before it reads any user, and the
// database keeps following the first.
func TestReconcileRecordsInstance(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		stored   int // user_01... in the database before the first run
		inClerk  int // user_01... in Clerk
		recorded string
		want     reconcile.Summary
	}{
		{"empty database (first import)", 0, 5, "", reconcile.Summary{Pages: 1, Counts: reconcile.Counts{Seen: 5, Inserted: 5}}},
		{"database sharing every user", 5, 5, "", reconcile.Summary{Pages: 1, Counts: reconcile.Counts{Seen: 5, Skipped: 5}}},
		{"database sharing half its users", 10, 5, "", reconcile.Summary{Pages: 1, Counts: reconcile.Counts{Seen: 5, Skipped: 5, Refused: 5}}},
		{"instance already recorded", 5, 5, clerkfake.DefaultInstance, reconcile.Summary{Pages: 1, Counts: reconcile.Counts{Seen: 5, Skipped: 5}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := openSeeded(t, tt.stored, tt.recorded)
			fake := clerkfake.New(t, testKey, fakeUsers(tt.inClerk, 1000)...)
			got, err := newReconciler(t, st, fake, reconcile.Config{MaxDeleteShare: 0.1}).Run(t.Context())
			if err != nil || got != tt.want {
				t.Fatalf("Run = %+v, %v; want %+v", got, err, tt.want)
			}
			if rec, err := st.ClerkInstance(t.Context()); rec != clerkfake.DefaultInstance || err != nil {
				t.Errorf("ClerkInstance after Run = %q, %v; want %q", rec, err, clerkfake.DefaultInstance)
			}

			// The same key, now reading another instance: refused before any users request.
			fake.SetInstance(foreignInstance)
			before := len(fake.Requests())
			got, err = newReconciler(t, st, fake, reconcile.Config{MaxDeleteShare: 0.1}).Run(t.Context())
			if !errors.Is(err, reconcile.ErrWrongInstance) {
				t.Fatalf("Run with another instance = %+v, %v; want an error wrapping ErrWrongInstance", got, err)
			}
			if reqs := fake.Requests()[before:]; len(reqs) != 1 || reqs[0] != "GET /v1/jwks" {
				t.Errorf("requests of the refused run = %q; want only GET /v1/jwks", reqs)
			}
			if rec, _ := st.ClerkInstance(t.Context()); rec != clerkfake.DefaultInstance {
				t.Errorf("ClerkInstance after the refused run = %q; want %q", rec, clerkfake.DefaultInstance)
			}
		})
	}
}

func TestCheckImport(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		stored   int // user_01... in the database
		foreign  bool
		recorded string
		allow    bool
		// wantErr is the sentinel CheckImport's error wraps (nil: none).
		wantErr      error
		wantRecorded string
		wantLists    int // GET /v1/users requests (the survey), 10 users a page
	}{
		{name: "empty database: recorded without a survey", foreign: true, wantRecorded: foreignInstance},
		{name: "database sharing its users: surveyed and recorded", stored: 12, wantRecorded: clerkfake.DefaultInstance, wantLists: 2},
		{name: "same instance recorded: no survey", stored: 12, recorded: clerkfake.DefaultInstance, wantRecorded: clerkfake.DefaultInstance},
		{name: "another instance recorded: refused", stored: 12, foreign: true, recorded: clerkfake.DefaultInstance, wantErr: reconcile.ErrWrongInstance, wantRecorded: clerkfake.DefaultInstance},
		{name: "foreign list: refused, not recorded", stored: 12, foreign: true, wantErr: reconcile.ErrFewShared, wantLists: 2},
		{name: "foreign list allowed by the override", stored: 12, foreign: true, allow: true, wantRecorded: foreignInstance, wantLists: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := openSeeded(t, tt.stored, tt.recorded)
			fake := clerkfake.New(t, testKey, fakeUsers(12, 1000)...)
			if tt.foreign {
				fake = clerkfake.New(t, testKey, foreignUsers(15)...)
				fake.SetInstance(foreignInstance)
			}
			r := newReconciler(t, st, fake, reconcile.Config{PageSize: 10, AllowMassDelete: tt.allow})
			_, err := r.CheckImport(t.Context())
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("CheckImport = %v; want %v", err, tt.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), "CLERK_SECRET_KEY") {
				t.Errorf("CheckImport error %q does not say to check CLERK_SECRET_KEY", err)
			}
			if got := len(listRequests(fake)); got != tt.wantLists {
				t.Errorf("list requests = %d; want %d", got, tt.wantLists)
			}
			if rec, err := st.ClerkInstance(t.Context()); rec != tt.wantRecorded || err != nil {
				t.Errorf("ClerkInstance after CheckImport = %q, %v; want %q", rec, err, tt.wantRecorded)
			}
			if n, _ := st.Count(t.Context()); n != int64(tt.stored) {
				t.Errorf("documents after CheckImport = %d; want %d (it writes no user)", n, tt.stored)
			}
		})
	}
}

// openSeeded opens a fresh database holding the users user_01... (stored of them), following
// the Clerk instance recorded ("" for none).
func openSeeded(t *testing.T, stored int, recorded string) *store.Store {
	t.Helper()
	st := openStore(t)
	seed(t, st, fakeUsers(stored, 1000)...)
	if recorded != "" {
		if _, err := st.RecordClerkInstance(t.Context(), recorded, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	return st
}
