package backfill_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"clerksync/backfill"
	"clerksync/clerk"
	"clerksync/clerk/clerkfake"
	"clerksync/store"
)

// countingStore is the store, counting the users written through the guarded upsert and the
// bulk inserts.
type countingStore struct {
	*store.Store
	upserts, inserts int
}

func (c *countingStore) UpsertUser(ctx context.Context, u store.User) (store.Outcome, error) {
	c.upserts++
	return c.Store.UpsertUser(ctx, u)
}

func (c *countingStore) InsertNewUsers(ctx context.Context, users []store.User) ([]string, error) {
	c.inserts++
	return c.Store.InsertNewUsers(ctx, users)
}

// claiming returns the Clerk user id, named first, updated at updatedAt, whose Clerk username
// is username.
func claiming(id, first, username string, updatedAt int64) clerkfake.User {
	u := clerkfake.NewUser(id, first, updatedAt)
	u.Username = username
	return u
}

// TestFromAPIPages: FromAPI inserts the users of a page that the database does not hold in one
// request, and writes the others through the guarded upsert, one by one: the database ends as
// the per-user import (Import, user after user) leaves it, with the same counts. Stored users
// older than Clerk's are updated, newer ones and tombstones are left alone, and a username
// another user of the page or of the database holds goes by the username rule.
func TestFromAPIPages(t *testing.T) {
	firstImport := []clerkfake.User{
		clerkfake.NewUser("user_01", "Ada", 2000),
		claiming("user_02", "Bob", "bob", 2000),
		clerkfake.NewUser("user_03", "Cy", 2000),
		clerkfake.NewUser("user_04", "Di", 2000),
		claiming("user_05", "Ed", "ed", 2000),
		clerkfake.NewUser("user_06", "Flo", 2000),
		clerkfake.NewUser("user_07", "Gus", 2000),
	}
	noTimestamp := clerkfake.NewUser("user_bad", "Bad", 0)
	noTimestamp.CreatedAt = 0
	tests := []struct {
		name string
		// stored are written before, as the webhooks would; deleted are then deleted.
		stored  []clerkfake.User
		deleted []string
		// imported are imported by a first FromAPI run before the one measured.
		imported []clerkfake.User
		page     []clerkfake.User // what Clerk lists, 3 a page
		want     backfill.Tally
		// wantInserts is how many bulk inserts FromAPI makes, wantUpserts how many users it
		// writes through the guarded upsert.
		wantInserts, wantUpserts int
		// wantUsernames are usernames some users must end with ("": any but their claim).
		wantUsernames map[string]string
	}{{
		name:        "first import into an empty database",
		page:        firstImport,
		want:        backfill.Tally{Created: 7},
		wantInserts: 3, wantUpserts: 0,
		wantUsernames: map[string]string{"user_02": "bob", "user_05": "ed"},
	}, {
		name:        "a rerun changes nothing",
		imported:    firstImport,
		page:        firstImport,
		want:        backfill.Tally{Unchanged: 7},
		wantInserts: 3, wantUpserts: 7,
		wantUsernames: map[string]string{"user_02": "bob", "user_05": "ed"},
	}, {
		name: "a page mixing new, stored older, stored newer and tombstoned users",
		stored: []clerkfake.User{
			clerkfake.NewUser("user_older", "Old", 1000),
			clerkfake.NewUser("user_newer", "Webhook", 3000),
			clerkfake.NewUser("user_gone", "Old", 1000),
			clerkfake.NewUser("user_same", "Clerk", 2000),
		},
		deleted: []string{"user_gone"},
		page: []clerkfake.User{
			clerkfake.NewUser("user_new1", "Clerk", 2000),
			clerkfake.NewUser("user_older", "Clerk", 2000),
			clerkfake.NewUser("user_new1", "Clerk", 2000), // listed twice in a page
			clerkfake.NewUser("user_newer", "Clerk", 2000),
			clerkfake.NewUser("user_gone", "Clerk", 2000),
			noTimestamp,
			clerkfake.NewUser("user_new2", "Clerk", 2000),
			clerkfake.NewUser("user_same", "Clerk", 2000),
		},
		want: backfill.Tally{Created: 2, Updated: 1, Unchanged: 3,
			Skipped: map[string]int{backfill.SkipDeleted: 1, backfill.SkipInvalid: 1}},
		wantInserts: 3, wantUpserts: 5,
	}, {
		name: "a username collision inside a page",
		stored: []clerkfake.User{
			claiming("user_s", "Stored", "ada", 1000), // an older claim: yields to user_n1's
			claiming("user_t", "Stored", "cy", 3000),  // a newer claim: kept from user_n4
		},
		page: []clerkfake.User{
			claiming("user_n1", "Ada", "ada", 2000),
			claiming("user_n2", "Bob", "bob", 2000),
			claiming("user_n3", "Bob", "bob", 1500), // older than user_n2's claim
			claiming("user_n4", "Cy", "cy", 2000),
			claiming("user_n5", "Di", "di", 2000),
		},
		want:        backfill.Tally{Created: 5},
		wantInserts: 2, wantUpserts: 3,
		wantUsernames: map[string]string{"user_n1": "ada", "user_s": "", "user_n2": "bob", "user_n3": "", "user_t": "cy", "user_n4": "", "user_n5": "di"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			st, ref := &countingStore{Store: openStore(t)}, openStore(t)
			var ids []string
			for _, s := range []*store.Store{st.Store, ref} {
				seed(t, s, tt.stored...)
				for _, id := range tt.deleted {
					if _, err := s.DeleteUser(ctx, id, 1500); err != nil {
						t.Fatal(err)
					}
				}
			}
			for _, u := range append(append(tt.stored, tt.imported...), tt.page...) {
				ids = append(ids, u.ID)
			}
			if tt.imported != nil {
				if _, err := backfill.FromAPI(ctx, st, listing(tt.imported), 3, backfill.NewProgress(&bytes.Buffer{}, 3)); err != nil {
					t.Fatalf("FromAPI (the first run) = %v", err)
				}
				importEach(t, ref, tt.imported)
				st.upserts, st.inserts = 0, 0
			}

			got, err := backfill.FromAPI(ctx, st, listing(tt.page), 3, backfill.NewProgress(&bytes.Buffer{}, 3))
			want := tt.want
			want.Organizations, want.Memberships = &backfill.Tally{}, &backfill.Tally{}
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Errorf("FromAPI = %+v, %v; want %+v", got, err, want)
			}
			if st.inserts != tt.wantInserts || st.upserts != tt.wantUpserts {
				t.Errorf("FromAPI made %d bulk inserts and %d guarded upserts; want %d and %d", st.inserts, st.upserts, tt.wantInserts, tt.wantUpserts)
			}
			refTally := importEach(t, ref, tt.page)
			refTally.Organizations, refTally.Memberships = &backfill.Tally{}, &backfill.Tally{}
			if !reflect.DeepEqual(got, refTally) {
				t.Errorf("FromAPI tally = %+v; want %+v (as Import user after user)", got, refTally)
			}
			for _, id := range ids {
				got, err := st.Get(ctx, id)
				want, wantErr := ref.Get(ctx, id)
				if (err == nil) != (wantErr == nil) || !sameUser(got, want) {
					t.Errorf("Get(%s) after FromAPI = %+v (email %s), %v; want %+v (email %s), %v (as Import user after user leaves it)",
						id, got, deref(got.Email), err, want, deref(want.Email), wantErr)
				}
			}
			for id, name := range tt.wantUsernames {
				u := get(t, st.Store, id)
				if claim := claimOf(tt.stored, tt.page, id); (name != "" && u.Username != name) || (name == "" && (u.Username == claim || u.Username == "")) {
					t.Errorf("%s username = %q; want %q (claim %q)", id, u.Username, name, claim)
				}
			}
		})
	}
}

// TestFromAPIPageInsertFails: a database failure in a page's bulk insert stops FromAPI with an
// error wrapping store.ErrDatabase, counting none of the page's users.
func TestFromAPIPageInsertFails(t *testing.T) {
	st := &failingInsert{countingStore: countingStore{Store: openStore(t)}, err: fmt.Errorf("%w: insert: broken", store.ErrDatabase)}
	got, err := backfill.FromAPI(t.Context(), st, clerkUsers(5), 2, backfill.NewProgress(&bytes.Buffer{}, 2))
	if !errors.Is(err, store.ErrDatabase) || got.Total() != 0 || st.upserts != 0 {
		t.Errorf("FromAPI with a failing insert = %+v, %v after %d guarded upserts; want nothing counted, none, and an error wrapping store.ErrDatabase", got, err, st.upserts)
	}
}

// failingInsert is the store whose bulk insert fails with err.
type failingInsert struct {
	countingStore
	err error
}

func (f *failingInsert) InsertNewUsers(context.Context, []store.User) ([]string, error) {
	return nil, f.err
}

// listing returns a lister serving users.
func listing(users []clerkfake.User) *lister {
	l := &lister{total: int64(len(users))}
	for _, u := range users {
		l.users = append(l.users, u.Clerk())
	}
	return l
}

// importEach imports users into st one by one (Import), as the backfill did before it
// inserted a page's new users at once, and returns the tally.
func importEach(t *testing.T, st *store.Store, users []clerkfake.User) backfill.Tally {
	t.Helper()
	var tally backfill.Tally
	for _, u := range users {
		if err := backfill.Import(t.Context(), st, u.Clerk(), &tally); err != nil {
			t.Fatalf("Import(%s) = %v", u.ID, err)
		}
	}
	return tally
}

// sameUser reports whether a and b hold the same values (their emails compared by value).
func sameUser(a, b store.User) bool {
	if deref(a.Email) != deref(b.Email) {
		return false
	}
	a.Email, b.Email = nil, nil
	return a == b
}

// claimOf returns the Clerk username of the last user id among the users given.
func claimOf(stored, page []clerkfake.User, id string) string {
	claim := ""
	for _, u := range append(append([]clerkfake.User{}, stored...), page...) {
		if u.ID == id {
			claim = u.Username
		}
	}
	return claim
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

// TestFromExportBatches: FromExport imports an export 500 rows at a time as FromAPI does a page:
// the rows' users the database does not hold in one bulk insert per batch, the others through
// the guarded upsert; the database ends as ImportRow, row after row, leaves it, with the same
// counts, what the export lacks (the picture) kept for a stored user.
func TestFromExportBatches(t *testing.T) {
	ctx := t.Context()
	st, ref := &countingStore{Store: openStore(t)}, openStore(t)
	for _, s := range []*store.Store{st.Store, ref} {
		seed(t, s, clerkfake.NewUser("user_0007", "Old", 1000), clerkfake.NewUser("user_0501", "Webhook", 4_000_000_000_000),
			clerkfake.NewUser("user_0450", "Old", 1000))
		if _, err := s.DeleteUser(ctx, "user_0450", 1500); err != nil {
			t.Fatal(err)
		}
	}
	var csv strings.Builder
	csv.WriteString("id,first_name,username,updated_at\n")
	for i := 1; i <= 502; i++ {
		switch i {
		case 300:
			csv.WriteString(",NoID,,2000\n")
		case 301:
			csv.WriteString("user_0302,Taken,ada,2000\n") // a username that the next row claims too
		case 302:
			csv.WriteString("user_0301,Ada,ada,2500\n")
		default:
			fmt.Fprintf(&csv, "user_%04d,Clerk,,2000\n", i)
		}
	}
	rows, err := clerk.ReadExport(strings.NewReader(csv.String()))
	if err != nil {
		t.Fatal(err)
	}
	got, err := backfill.FromExport(ctx, st, rows, backfill.NewProgress(&bytes.Buffer{}, 500), testLogger(t))
	want := backfill.Tally{Created: 498, Updated: 1, Unchanged: 1, Skipped: map[string]int{backfill.SkipDeleted: 1, backfill.SkipInvalid: 1}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("FromExport = %+v, %v; want %+v", got, err, want)
	}
	if st.inserts != 2 || st.upserts != 4 {
		t.Errorf("FromExport made %d bulk inserts and %d guarded upserts; want 2 and 4", st.inserts, st.upserts)
	}
	var refTally backfill.Tally
	for _, row := range rows {
		if row.Err != nil {
			refTally.Skip(backfill.SkipInvalid)
		} else if err := backfill.ImportRow(ctx, ref, row, &refTally); err != nil {
			t.Fatalf("ImportRow(line %d) = %v", row.Line, err)
		}
	}
	if !reflect.DeepEqual(got, refTally) {
		t.Errorf("FromExport tally = %+v; want %+v (as ImportRow row after row)", got, refTally)
	}
	for i := 1; i <= 502; i++ {
		id := fmt.Sprintf("user_%04d", i)
		got, err := st.Get(ctx, id)
		want, wantErr := ref.Get(ctx, id)
		if (err == nil) != (wantErr == nil) || !sameUser(got, want) {
			t.Errorf("Get(%s) after FromExport = %+v (email %s), %v; want %+v (email %s), %v (as ImportRow row after row leaves it)",
				id, got, deref(got.Email), err, want, deref(want.Email), wantErr)
		}
	}
	if u := get(t, st.Store, "user_0007"); u.FullName != "Clerk" || u.ProfilePicture != "https://img.clerk.com/user_0007" {
		t.Errorf("user_0007 = full_name %q, profile_picture %q; want Clerk, the stored picture kept", u.FullName, u.ProfilePicture)
	}
	if a, b := get(t, st.Store, "user_0301"), get(t, st.Store, "user_0302"); a.Username != "ada" || b.Username == "ada" || b.Username == "" {
		t.Errorf("usernames of user_0301, user_0302 = %q, %q; want ada (the newer claim), and ada with a suffix", a.Username, b.Username)
	}
}
