package functions_test

import (
	"context"
	"errors"
	"testing"

	inngesterrors "github.com/inngest/inngestgo/errors"

	"clerksync/clerk"
	clerkevent "clerksync/clerk/event"
	"clerksync/store"
)

// scenario is a sequence of events for one user, the outcome each call should report, and the
// stored user expected at the end.
type scenario struct {
	name     string
	events   []event
	outcomes []store.Outcome
	want     expectUser
}

// run sends the scenario's events to a fresh database, in each write mode, and checks outcomes
// and final state.
func (sc scenario) run(t *testing.T) {
	eachMode(t, func(t *testing.T, h *harness) {
		for i, e := range sc.events {
			h.mustSend(e, sc.outcomes[i])
		}
		id := sc.want.user.ID
		sc.want.check(t, "Get("+id+")", h.get(id))
	})
}

// TestStoredFields: what the functions store for users whose data is awkward.
func TestStoredFields(t *testing.T) {
	t.Parallel()
	primaryNotFirst := clerkUser("user_primary2nd", "Pia", "Second", "", "", t1)
	primaryNotFirst.EmailAddresses = []clerk.EmailAddress{
		{ID: "idn_other", EmailAddress: "other@x.org"},
		{ID: "idn_primary", EmailAddress: "Pia.Primary@x.org"},
	}
	primaryNotFirst.PrimaryEmailAddressID = ptr("idn_primary")

	withUsername := clerkUser("user_clerkname", "Jo", "Smith", "jo@x.org", "", t1)
	withUsername.Username = ptr("Jo.Smith_99")

	tests := []struct {
		name           string
		in             clerk.User
		email          *string
		fullName       string
		username       string // exact, when usernamePrefix is empty
		usernamePrefix string
		clerkUsername  string
	}{
		{"no email", clerkUser("user_2NoEmailAbCdEf", "Nemo", "Less", "", "", t1), nil, "Nemo Less", "", "user", ""},
		{"primary email not first", primaryNotFirst, ptr("Pia.Primary@x.org"), "Pia Second", "pia.primary", "", ""},
		{"null last name", clerkUser("user_nolast", "Jane", "", "jane.nl@x.org", "", t1), ptr("jane.nl@x.org"), "Jane", "jane.nl", "", ""},
		{"null first name", clerkUser("user_nofirst", "", "Doe", "doe.nf@x.org", "", t1), ptr("doe.nf@x.org"), "Doe", "doe.nf", "", ""},
		{"null first and last name", clerkUser("user_noname", "", "", "anon@x.org", "", t1), ptr("anon@x.org"), "", "anon", "", ""},
		{"whitespace-only names", clerkUser("user_blank", "  ", "\t", "blank@x.org", "", t1), ptr("blank@x.org"), "", "blank", "", ""},
		{"clerk username kept", withUsername, ptr("jo@x.org"), "Jo Smith", "Jo.Smith_99", "", "Jo.Smith_99"},
	}
	h := newHarness(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := h.sub(t)
			h.mustSend(created(tc.in), store.Inserted)
			want := expectUser{
				user: store.User{
					ID:            tc.in.ID,
					Email:         tc.email,
					FullName:      tc.fullName,
					Username:      tc.username,
					ClerkUsername: tc.clerkUsername,
					CreatedAt:     tc.in.CreatedAt,
					UpdatedAt:     tc.in.UpdatedAt,
				},
				usernamePrefix: tc.usernamePrefix,
			}
			want.check(t, "Get("+tc.in.ID+")", h.get(tc.in.ID))
		})
	}
}

// TestDeleteUnknownUser: deleting a user the database never saw succeeds, and the create and
// update that arrive later do not bring the user back.
func TestDeleteUnknownUser(t *testing.T) {
	t.Parallel()
	const id = "user_deletedfirst"
	scenario{
		events: []event{
			deleted(id, t2),
			created(clerkUser(id, "Late", "Create", "late@x.org", "https://img.example/1", t1)),
			updated(clerkUser(id, "Late", "Update", "late@y.org", "https://img.example/2", t3)),
			deleted(id, t3),
		},
		outcomes: []store.Outcome{store.Deleted, store.Skipped, store.Skipped, store.AlreadyDeleted},
		want:     expectUser{user: store.User{ID: id, UpdatedAt: t2, Deleted: true, DeletedAt: t2}},
	}.run(t)
}

// TestExamples: Clerk's example payloads, delivered in the order given.
func TestExamples(t *testing.T) {
	t.Parallel()
	const (
		exampleID = "user_29w83sxmDNGwOuEthce5gg56FcC"
		johnID    = "user_2g7np7Hrk0SN6kj5EDMLDaKNL0S"
	)
	example := store.User{
		ID:             exampleID,
		Email:          ptr("example@example.org"),
		FullName:       "Example",
		ProfilePicture: "https://img.clerk.com/xxxxxx",
		Username:       "example",
		CreatedAt:      1654012591514,
		UpdatedAt:      1654012824306,
	}
	john := store.User{
		ID:             johnID,
		FullName:       "John Doe Updated",
		ProfilePicture: "https://img.clerk.com/yyyyy",
		Username:       "johndoe",
		ClerkUsername:  "johndoe",
		CreatedAt:      1716883200000,
		UpdatedAt:      1716883500000,
	}
	ev := func(files ...string) []event {
		evs := make([]event, len(files))
		for i, f := range files {
			evs[i] = exampleEvent(t, f)
		}
		return evs
	}
	tests := []scenario{{
		name:     "docs created then dashboard updated",
		events:   ev("docs-user.created.json", "dashboard-user.updated.json"),
		outcomes: []store.Outcome{store.Inserted, store.Updated},
		want:     expectUser{user: example},
	}, {
		name:     "dashboard updated then docs created",
		events:   ev("dashboard-user.updated.json", "docs-user.created.json"),
		outcomes: []store.Outcome{store.Inserted, store.Skipped},
		want:     expectUser{user: example},
	}, {
		name:     "openapi created: primary id but no addresses",
		events:   ev("openapi-user.created.json"),
		outcomes: []store.Outcome{store.Inserted},
		want: expectUser{
			user:           store.User{ID: johnID, FullName: "John Doe", ProfilePicture: "https://img.clerk.com/xxxxxx", CreatedAt: 1716883200000, UpdatedAt: 1716883200000},
			usernamePrefix: "user",
		},
	}, {
		name:     "openapi updated alone keeps clerk username",
		events:   ev("openapi-user.updated.json"),
		outcomes: []store.Outcome{store.Inserted},
		want:     expectUser{user: john},
	}, {
		name:     "openapi created then updated takes clerk username",
		events:   ev("openapi-user.created.json", "openapi-user.updated.json"),
		outcomes: []store.Outcome{store.Inserted, store.Updated},
		want:     expectUser{user: john},
	}, {
		name:     "openapi created, updated, deleted",
		events:   ev("openapi-user.created.json", "openapi-user.updated.json", "openapi-user.deleted.json"),
		outcomes: []store.Outcome{store.Inserted, store.Updated, store.Deleted},
		// The tombstone keeps no created_at, and the later of its last update and its deletion.
		want: expectUser{user: store.User{ID: johnID, UpdatedAt: 1716883500000, Deleted: true, DeletedAt: 1716883200000}},
	}, {
		name:     "dashboard deleted, never seen",
		events:   ev("dashboard-user.deleted.json"),
		outcomes: []store.Outcome{store.Deleted},
		want:     expectUser{user: store.User{ID: "user_29wBMCtzATuFJut8jO2VNTVekS4", UpdatedAt: 1661861640000, Deleted: true, DeletedAt: 1661861640000}},
	}}
	for _, sc := range tests {
		t.Run(sc.name, sc.run)
	}
}

// TestUnusableEventNotRetried: events without a user id (or anything to order them by) fail
// with a NoRetryError and write nothing.
func TestUnusableEventNotRetried(t *testing.T) {
	t.Parallel()
	noTS := clerkUser("user_nots", "No", "Time", "", "", 0)
	tests := []struct {
		name string
		e    event
	}{
		{"create without id", created(clerkUser("", "No", "Id", "noid@x.org", "", t1))},
		{"update with blank id", updated(clerkUser("  ", "No", "Id", "noid@x.org", "", t1))},
		{"delete without id", deleted("", t1)},
		{"create without updated_at or ts", event{name: clerkevent.UserCreated, user: noTS}},
	}
	h := newHarness(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := h.sub(t).send(tc.e)
			if err == nil || !inngesterrors.IsNoRetryError(err) || !errors.Is(err, clerk.ErrBadUser) {
				t.Errorf("%s error = %v (no-retry %t); want a NoRetryError wrapping ErrBadUser", tc.e, err, inngesterrors.IsNoRetryError(err))
			}
		})
	}
	if n, err := h.st.Count(h.ctx); err != nil || n != 0 {
		t.Errorf("Count = %d, %v; want 0 (nothing written)", n, err)
	}
}

// TestDatabaseDownIsRetried: when the database fails, each function returns an ordinary error,
// so that Inngest retries it.
func TestDatabaseDownIsRetried(t *testing.T) {
	t.Parallel()
	u := clerkUser("user_dbdown", "Down", "Time", "down@x.org", "", t1)
	for _, e := range []event{created(u), updated(u), deleted(u.ID, t2)} {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			if err := h.st.Close(context.Background()); err != nil {
				t.Fatalf("Close = %v", err)
			}
			out, err := h.send(e)
			if err == nil || inngesterrors.IsNoRetryError(err) {
				t.Errorf("%s = %q, %v (no-retry %t); want a retryable error", e, out, err, inngesterrors.IsNoRetryError(err))
			}
			if !errors.Is(err, store.ErrDatabase) {
				t.Errorf("%s error = %v; want one wrapping store.ErrDatabase", e, err)
			}
		})
	}
}
