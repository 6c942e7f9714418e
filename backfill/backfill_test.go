package backfill_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"testing"

	"clerksync/backfill"
	"clerksync/clerk"
	"clerksync/clerk/clerkfake"
	"clerksync/store"
)

// lister is a Clerk user list in memory: it serves users a page at a time, as Clerk's Backend
// API does, and fails from the offset failAt on (when failAt > 0).
type lister struct {
	users   []clerk.User
	total   int64 // the total it reports
	failAt  int
	err     error
	offsets []int // the offsets asked for
}

func (l *lister) ListUsers(_ context.Context, limit, offset int) (clerk.UserPage, error) {
	l.offsets = append(l.offsets, offset)
	if l.failAt > 0 && offset >= l.failAt {
		return clerk.UserPage{}, l.err
	}
	end := min(offset+limit, len(l.users))
	return clerk.UserPage{Users: l.users[min(offset, end):end]}, nil
}

// CountUsers reports the total the lister was given.
func (l *lister) CountUsers(context.Context) (int64, error) { return l.total, nil }

// ListOrganizations serves no organization.
func (l *lister) ListOrganizations(context.Context, int, int) (clerk.OrganizationPage, error) {
	return clerk.OrganizationPage{}, nil
}

// ListMemberships serves no membership.
func (l *lister) ListMemberships(context.Context, string, []string, int, int) (clerk.MembershipPage, error) {
	return clerk.MembershipPage{}, nil
}

// clerkUsers returns n Clerk users user_01... updated at 2000, and a lister serving them.
func clerkUsers(n int) *lister {
	l := &lister{total: int64(n)}
	for i := range n {
		l.users = append(l.users, clerkfake.NewUser(fmt.Sprintf("user_%02d", i+1), "First", 2000).Clerk())
	}
	return l
}

// progressLine is a plain progress line for n of total users, all of them created.
func progressLine(n, total int) string {
	return fmt.Sprintf("backfill: %d/%d users: created %d, updated 0, unchanged 0, skipped 0\n", n, total, n)
}

func TestFromAPI(t *testing.T) {
	tests := []struct {
		name        string
		users       int
		wantOffsets []int
		// wantLines are the progress lines during the import; wantFinish what Finish adds.
		wantLines, wantFinish string
	}{
		{"last page short", 5, []int{0, 2, 4}, progressLine(2, 5) + progressLine(4, 5), progressLine(5, 5)},
		{"last page full", 4, []int{0, 2, 4}, progressLine(2, 4) + progressLine(4, 4), ""},
		{"no user", 0, []int{0}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := openStore(t)
			api := clerkUsers(tt.users)
			var out bytes.Buffer
			p := backfill.NewProgress(&out, 2)
			got, err := backfill.FromAPI(t.Context(), st, api, 2, p)
			if err != nil {
				t.Fatalf("FromAPI = %v", err)
			}
			if want := (backfill.Tally{Created: tt.users, Organizations: &backfill.Tally{}, Memberships: &backfill.Tally{}}); !reflect.DeepEqual(got, want) {
				t.Errorf("FromAPI tally = %+v; want %+v", got, want)
			}
			if !slices.Equal(api.offsets, tt.wantOffsets) {
				t.Errorf("offsets asked for = %v; want %v", api.offsets, tt.wantOffsets)
			}
			if out.String() != tt.wantLines {
				t.Errorf("progress during FromAPI = %q; want %q", out.String(), tt.wantLines)
			}
			p.Finish(&got)
			if got := strings.TrimPrefix(out.String(), tt.wantLines); got != tt.wantFinish {
				t.Errorf("Finish wrote %q; want %q", got, tt.wantFinish)
			}

			// Again: nothing changes.
			again, err := backfill.FromAPI(t.Context(), st, api, 2, backfill.NewProgress(&bytes.Buffer{}, 2))
			if want := (backfill.Tally{Unchanged: tt.users, Organizations: &backfill.Tally{}, Memberships: &backfill.Tally{}}); err != nil || !reflect.DeepEqual(again, want) {
				t.Errorf("FromAPI again = %+v, %v; want %+v", again, err, want)
			}
		})
	}
}

// TestFromAPIStops: an error of Clerk stops the import, which returns what it did so far.
func TestFromAPIStops(t *testing.T) {
	st := openStore(t)
	api := clerkUsers(5)
	api.failAt, api.err = 2, errors.New("clerk: 500")
	var out bytes.Buffer
	got, err := backfill.FromAPI(t.Context(), st, api, 2, backfill.NewProgress(&out, 2))
	if !errors.Is(err, api.err) {
		t.Fatalf("FromAPI = %v; want Clerk's error", err)
	}
	if want := (backfill.Tally{Created: 2}); !reflect.DeepEqual(got, want) {
		t.Errorf("FromAPI tally = %+v; want %+v (what it did before the error)", got, want)
	}
	if n, err := st.Count(t.Context()); n != 2 || err != nil {
		t.Errorf("users after FromAPI = %d, %v; want 2", n, err)
	}
}

// TestFromAPIDatabaseError: a database failure stops the import with an error wrapping
// store.ErrDatabase.
func TestFromAPIDatabaseError(t *testing.T) {
	st := openStore(t)
	if err := st.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	api := clerkUsers(3)
	got, err := backfill.FromAPI(t.Context(), st, api, 2, backfill.NewProgress(&bytes.Buffer{}, 2))
	if !errors.Is(err, store.ErrDatabase) {
		t.Fatalf("FromAPI against a closed store = %v; want an error wrapping store.ErrDatabase", err)
	}
	if got.Total() != 0 || len(api.offsets) != 1 {
		t.Errorf("FromAPI = %+v after %d pages; want nothing counted after the first page", got, len(api.offsets))
	}
}

func TestFromExport(t *testing.T) {
	st := openStore(t)
	seed(t, st, clerkfake.NewUser("user_b", "Stored", 4_000_000_000_000)) // newer than the row
	const csv = "id,first_name,updated_at\nuser_a,Ada,2000\n,NoID,2000\nuser_b,Bob,2000\nuser_c,Cy,2000\n"
	rows, err := clerk.ReadExport(strings.NewReader(csv))
	if err != nil {
		t.Fatal(err)
	}
	var out, log bytes.Buffer
	p := backfill.NewProgress(&out, 3)
	got, err := backfill.FromExport(t.Context(), st, rows, p, slog.New(slog.NewTextHandler(&log, nil)))
	if err != nil {
		t.Fatalf("FromExport = %v", err)
	}
	want := backfill.Tally{Created: 2, Unchanged: 1, Skipped: map[string]int{backfill.SkipInvalid: 1}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("FromExport tally = %+v; want %+v", got, want)
	}
	if !strings.Contains(log.String(), "export row skipped") || !strings.Contains(log.String(), "line=3") {
		t.Errorf("the log does not name the skipped row (line 3):\n%s", &log)
	}
	p.Finish(&got)
	wantOut := "backfill: 3/4 users: created 1, updated 0, unchanged 1, skipped 1\n" +
		"backfill: 4/4 users: created 2, updated 0, unchanged 1, skipped 1\n"
	if out.String() != wantOut {
		t.Errorf("progress = %q; want %q", out.String(), wantOut)
	}
	if u := get(t, st, "user_b"); u.FullName != "Stored Doe" {
		t.Errorf("user_b full_name = %q; want the newer stored write kept", u.FullName)
	}
}

func TestFromExportDatabaseError(t *testing.T) {
	st := openStore(t)
	if err := st.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	rows, err := clerk.ReadExport(strings.NewReader("id\nuser_a\nuser_b\n"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := backfill.FromExport(t.Context(), st, rows, backfill.NewProgress(&bytes.Buffer{}, 1), testLogger(t))
	if !errors.Is(err, store.ErrDatabase) || got.Total() != 0 {
		t.Fatalf("FromExport against a closed store = %+v, %v; want nothing counted and an error wrapping store.ErrDatabase", got, err)
	}
}

// TestProgressUnknownTotal: with no total known, the plain lines count the users only.
func TestProgressUnknownTotal(t *testing.T) {
	var out bytes.Buffer
	p := backfill.NewProgress(&out, 0) // every user
	p.Finish(&backfill.Tally{Created: 1, Skipped: map[string]int{backfill.SkipDeleted: 2}})
	if want := "backfill: 3 users: created 1, updated 0, unchanged 0, skipped 2\n"; out.String() != want {
		t.Errorf("Finish = %q; want %q", out.String(), want)
	}
	out.Reset()
	backfill.NewProgress(&out, 5).Finish(&backfill.Tally{})
	if out.Len() != 0 {
		t.Errorf("Finish with nothing new = %q; want nothing", out.String())
	}
}

func TestWriteSummary(t *testing.T) {
	tally := backfill.Tally{Created: 1190, Updated: 5, Unchanged: 7, Skipped: map[string]int{backfill.SkipInvalid: 1, backfill.SkipDeleted: 2}}
	var out bytes.Buffer
	tally.WriteSummary(&out, "the Clerk Backend API (https://api.clerk.com/v1)", true)
	want := "backfill done: 1205 users from the Clerk Backend API (https://api.clerk.com/v1)\n" +
		"  created       1190\n" +
		"  updated          5\n" +
		"  unchanged        7  (the database had this version or a newer one)\n" +
		"  skipped          3\n" +
		"          2  deleted in the database (a tombstone; never brought back)\n" +
		"          1  invalid (no id or no usable timestamp)\n"
	if out.String() != want {
		t.Errorf("WriteSummary =\n%s\nwant\n%s", &out, want)
	}

	out.Reset()
	(&backfill.Tally{Created: 2}).WriteSummary(&out, "the export users.csv", false)
	want = "backfill stopped early: 2 users from the export users.csv\n" +
		"  created          2\n" +
		"  updated          0\n" +
		"  unchanged        0  (the database had this version or a newer one)\n" +
		"  skipped          0\n"
	if out.String() != want {
		t.Errorf("WriteSummary of a stopped backfill =\n%s\nwant\n%s", &out, want)
	}
}

// fakeAPI returns the real Clerk client, pointed at the stand-in fake.
func fakeAPI(t *testing.T, fake *clerkfake.Server) *clerk.API {
	return clerk.NewAPI(clerk.APIConfig{SecretKey: fake.Key, APIURL: fake.URL}, testLogger(t))
}

// TestFromAPIOrganizations: after the users, FromAPI imports every organization and its
// memberships, page by page, through the guarded upserts: a newer stored organization is kept,
// a deleted one stays deleted and so do its memberships; a second run changes nothing.
func TestFromAPIOrganizations(t *testing.T) {
	st := openStore(t)
	ctx := t.Context()
	if err := clerkfake.SeedOrganizations(ctx, st,
		clerkfake.NewOrganization("org_02", "Old", 1000),
		clerkfake.NewOrganization("org_03", "Webhook", 3000),
		clerkfake.NewOrganization("org_04", "Old", 1000)); err != nil {
		t.Fatal(err)
	}
	if _, err := st.DeleteOrganization(ctx, "org_04", 1500); err != nil {
		t.Fatal(err)
	}
	fake := clerkfake.New(t, "sk_test_backfill", clerkfake.NewUser("user_01", "Ada", 2000), clerkfake.NewUser("user_02", "Bob", 2000))
	for i := range 4 {
		org := fmt.Sprintf("org_%02d", i+1)
		fake.PutOrganization(clerkfake.NewOrganization(org, "Clerk", 2000))
		for j := range 3 {
			fake.PutMembership(clerkfake.NewMembership(org, fmt.Sprintf("user_%02d", j+1), "org:member", 2000))
		}
	}
	var out bytes.Buffer
	p := backfill.NewProgress(&out, 2)
	got, err := backfill.FromAPI(ctx, st, fakeAPI(t, fake), 2, p)
	if err != nil {
		t.Fatalf("FromAPI = %v", err)
	}
	deleted := func(n int) map[string]int { return map[string]int{backfill.SkipDeleted: n} }
	want := backfill.Tally{Created: 2,
		Organizations: &backfill.Tally{Created: 1, Updated: 1, Unchanged: 1, Skipped: deleted(1)},
		Memberships:   &backfill.Tally{Created: 9, Skipped: deleted(3)}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("FromAPI tally = %+v, organizations %+v, memberships %+v; want %+v, %+v, %+v",
			got, got.Organizations, got.Memberships, want, want.Organizations, want.Memberships)
	}
	p.Finish(&got)
	wantOut := "backfill: 2/2 users: created 2, updated 0, unchanged 0, skipped 0\n" +
		"backfill: 2/4 organizations: created 1, updated 1, unchanged 0, skipped 0; 6 memberships: created 6, updated 0, unchanged 0, skipped 0\n" +
		"backfill: 4/4 organizations: created 1, updated 1, unchanged 1, skipped 1; 12 memberships: created 9, updated 0, unchanged 0, skipped 3\n"
	if out.String() != wantOut {
		t.Errorf("progress = %q; want %q", out.String(), wantOut)
	}
	var sum bytes.Buffer
	got.WriteSummary(&sum, "the API", true)
	for _, line := range []string{
		"\norganizations: 4 (created 1, updated 1, unchanged 1, skipped 1: 1 deleted in the database (a tombstone; never brought back))\n",
		"\nmemberships: 12 (created 9, updated 0, unchanged 0, skipped 3: 3 deleted in the database (a tombstone; never brought back))\n",
	} {
		if !strings.Contains(sum.String(), line) {
			t.Errorf("summary has no line %q:\n%s", line, &sum)
		}
	}
	for id, name := range map[string]string{"org_01": "Clerk", "org_02": "Clerk", "org_03": "Webhook", "org_04": ""} {
		if o, err := st.GetOrganization(ctx, id); err != nil || o.Name != name || o.Deleted != (name == "") {
			t.Errorf("%s = %+v, %v; want name %q, deleted %t", id, o, err, name, name == "")
		}
	}
	if live, err := st.LiveMemberships(ctx, "", ""); err != nil || len(live) != 9 {
		t.Errorf("live memberships = %d, %v; want 9 (none of the deleted org_04)", len(live), err)
	}
	var lists []string
	for _, r := range fake.Requests() {
		if strings.HasPrefix(r, "GET /v1/organizations") {
			lists = append(lists, r)
		}
	}
	wantLists := []string{"GET /v1/organizations?limit=2&offset=0&order_by=%2Bcreated_at"}
	for i, org := range []string{"org_01", "org_02", "org_03", "org_04"} {
		if i == 2 {
			wantLists = append(wantLists, "GET /v1/organizations?limit=2&offset=2&order_by=%2Bcreated_at")
		}
		for _, offset := range []int{0, 2} {
			wantLists = append(wantLists, fmt.Sprintf("GET /v1/organizations/%s/memberships?limit=2&offset=%d&order_by=%%2Bcreated_at", org, offset))
		}
	}
	wantLists = append(wantLists, "GET /v1/organizations?limit=2&offset=4&order_by=%2Bcreated_at")
	if !reflect.DeepEqual(lists, wantLists) {
		t.Errorf("organization requests = %q; want %q", lists, wantLists)
	}

	again, err := backfill.FromAPI(ctx, st, fakeAPI(t, fake), 2, backfill.NewProgress(&bytes.Buffer{}, 2))
	want = backfill.Tally{Unchanged: 2,
		Organizations: &backfill.Tally{Unchanged: 3, Skipped: deleted(1)},
		Memberships:   &backfill.Tally{Unchanged: 9, Skipped: deleted(3)}}
	if err != nil || !reflect.DeepEqual(again, want) {
		t.Errorf("FromAPI again = %+v, organizations %+v, memberships %+v, %v; want %+v, %+v, %+v",
			again, again.Organizations, again.Memberships, err, want, want.Organizations, want.Memberships)
	}
}

// TestFromAPIOrganizationsNotEnabled: an instance with organizations turned off has none to
// import: FromAPI imports the users and says so, without an error.
func TestFromAPIOrganizationsNotEnabled(t *testing.T) {
	st := openStore(t)
	fake := clerkfake.New(t, "sk_test_backfill", clerkfake.NewUser("user_01", "Ada", 2000))
	fake.DisableOrganizations()
	got, err := backfill.FromAPI(t.Context(), st, fakeAPI(t, fake), 2, backfill.NewProgress(&bytes.Buffer{}, 2))
	if want := (backfill.Tally{Created: 1, OrganizationsNotEnabled: true}); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("FromAPI = %+v, %v; want %+v", got, err, want)
	}
	var sum bytes.Buffer
	got.WriteSummary(&sum, "the API", true)
	if want := "\norganizations: none (the Clerk instance has organizations turned off)\n"; !strings.Contains(sum.String(), want) {
		t.Errorf("summary has no line %q:\n%s", want, &sum)
	}
}

// TestFromAPIOrganizationGone: an organization deleted between the list and the read of its
// memberships has none: FromAPI goes on.
func TestFromAPIOrganizationGone(t *testing.T) {
	st := openStore(t)
	fake := clerkfake.New(t, "sk_test_backfill")
	for _, id := range []string{"org_01", "org_02"} {
		fake.PutOrganization(clerkfake.NewOrganization(id, "Clerk", 2000))
		fake.PutMembership(clerkfake.NewMembership(id, "user_01", "org:admin", 2000))
	}
	fake.BeforeListOf("/v1/organizations/org_01/memberships", func(int) { fake.RemoveOrganization("org_01") })
	got, err := backfill.FromAPI(t.Context(), st, fakeAPI(t, fake), 10, backfill.NewProgress(&bytes.Buffer{}, 10))
	want := backfill.Tally{Organizations: &backfill.Tally{Created: 2}, Memberships: &backfill.Tally{Created: 1}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("FromAPI = %+v, organizations %+v, memberships %+v, %v; want %+v, %+v, %+v",
			got, got.Organizations, got.Memberships, err, want, want.Organizations, want.Memberships)
	}
}
