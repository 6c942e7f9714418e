package functions_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"

	"clerksync/clerk"
	clerkevent "clerksync/clerk/event"
	"clerksync/functions"
	"clerksync/store"
	"clerksync/store/storetest"
)

// srv is the embedded FerretDB of this package's tests.
var srv *storetest.Server

var eventCounter atomic.Int64

func TestMain(m *testing.M) { os.Exit(storetest.Main(m, &srv)) }

// openStore opens a fresh database for one test.
func openStore(t testing.TB) *store.Store { return srv.Open(t, store.WritesAuto) }

// modes are the store's two write modes. The tests of the guarantees run in both: on FerretDB,
// WritesAuto picks WritesByID; WritesConditional is what MongoDB gets. (No MongoDB server runs
// here: the conditional mode is exercised on FerretDB.)
var modes = []struct {
	name string
	mode store.WriteMode
}{{"conditional", store.WritesConditional}, {"by-id", store.WritesByID}}

// eachMode runs f as one subtest per write mode, each with a fresh harness, in parallel.
func eachMode(t *testing.T, f func(t *testing.T, h *harness)) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			f(t, newHarnessMode(t, m.mode))
		})
	}
}

// harness is the functions under test, writing to a fresh database.
type harness struct {
	t   *testing.T
	ctx context.Context
	st  *store.Store
	fns *functions.Functions
}

// newHarness opens a fresh database and the functions writing to it. The functions' logs go
// to the test output (shown with -v or when the test fails).
func newHarness(t *testing.T) *harness { return newHarnessMode(t, store.WritesAuto) }

// newHarnessMode is newHarness with the store in the given write mode.
func newHarnessMode(t *testing.T, mode store.WriteMode) *harness {
	t.Helper()
	st := srv.Open(t, mode)
	logger := slog.New(slog.NewTextHandler(t.Output(), nil))
	return &harness{t: t, ctx: t.Context(), st: st, fns: functions.New(st, st, logger, functions.Config{AppID: testAppID})}
}

// sub returns the harness for a subtest t, on the same database.
func (h *harness) sub(t *testing.T) *harness {
	c := *h
	c.t = t
	return &c
}

// event is one Inngest event as the webhook bridge sends it. For a delete only user.ID is used.
type event struct {
	name string // clerkevent.UserCreated, UserUpdated or UserDeleted
	user clerk.User
	ts   int64 // the event's ts, Unix milliseconds
}

func created(u clerk.User) event {
	return event{name: clerkevent.UserCreated, user: u, ts: u.UpdatedAt}
}

func updated(u clerk.User) event {
	return event{name: clerkevent.UserUpdated, user: u, ts: u.UpdatedAt}
}

func deleted(id string, ts int64) event {
	return event{name: clerkevent.UserDeleted, user: clerk.User{ID: id}, ts: ts}
}

// String names the call the event makes, for failure messages: SyncUser(user_1).
func (e event) String() string {
	fn := map[string]string{
		clerkevent.UserCreated: "SyncUser",
		clerkevent.UserUpdated: "UpdateUser",
		clerkevent.UserDeleted: "DeleteUser",
	}[e.name]
	return fmt.Sprintf("%s(%s)", fn, e.user.ID)
}

// input builds the function input the Inngest SDK would pass for an event: data as JSON.
func input[T any](name string, data T, ts int64) functions.Input {
	return rawInput(name, mustJSON(data), ts)
}

// rawInput builds the function input the Inngest SDK would pass for an event whose data is the
// JSON data.
func rawInput(name string, data json.RawMessage, ts int64) functions.Input {
	id := clerkevent.ID(fmt.Sprintf("msg_%d", eventCounter.Add(1)))
	return functions.Input{Event: functions.Event{ID: &id, Name: name, Data: functions.Data{JSON: data}, Timestamp: ts}}
}

// mustJSON returns v as JSON; v is always a type that marshals.
func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// send runs the function the event triggers and returns the outcome it reports.
func (h *harness) send(e event) (store.Outcome, error) {
	var res any
	var err error
	switch e.name {
	case clerkevent.UserCreated:
		res, err = h.fns.SyncUser(h.ctx, input(e.name, e.user, e.ts))
	case clerkevent.UserUpdated:
		res, err = h.fns.UpdateUser(h.ctx, input(e.name, e.user, e.ts))
	case clerkevent.UserDeleted:
		data := clerk.DeletedObject{ID: e.user.ID, Deleted: true}
		res, err = h.fns.DeleteUser(h.ctx, input(e.name, data, e.ts))
	default:
		h.t.Fatalf("unknown event name %q", e.name)
	}
	if err != nil {
		return "", err
	}
	r, ok := res.(functions.Result)
	if !ok {
		return "", fmt.Errorf("result is %T, not functions.Result", res)
	}
	if r.UserID != strings.TrimSpace(e.user.ID) {
		return "", fmt.Errorf("result user id = %q; want %q", r.UserID, e.user.ID)
	}
	return r.Outcome, nil
}

// mustSend sends the event and fails the test on an error. If want is not empty, it also
// fails unless the function reports that outcome.
func (h *harness) mustSend(e event, want store.Outcome) {
	h.t.Helper()
	got, err := h.send(e)
	if err != nil {
		h.t.Fatalf("%s = %v; want outcome %s", e, err, want)
	}
	if want != "" && got != want {
		h.t.Errorf("%s outcome = %s; want %s", e, got, want)
	}
}

// get reads a stored user, failing the test when it cannot.
func (h *harness) get(id string) store.User {
	h.t.Helper()
	u, err := h.st.Get(h.ctx, id)
	if err != nil {
		h.t.Fatalf("Get(%s) = %v", id, err)
	}
	return u
}

// ptr returns a pointer to v.
func ptr[T any](v T) *T { return &v }

// opt returns nil for "" and a pointer to s otherwise, like Clerk's nullable strings.
func opt(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// clerkUser returns a Clerk user; empty strings are null. A non-empty email is the user's
// only address and its primary one.
func clerkUser(id, first, last, email, image string, updatedAt int64) clerk.User {
	u := clerk.User{
		ID:        id,
		FirstName: opt(first),
		LastName:  opt(last),
		ImageURL:  opt(image),
		CreatedAt: 1_600_000_000_000,
		UpdatedAt: updatedAt,
	}
	if email != "" {
		u.EmailAddresses = []clerk.EmailAddress{{ID: "idn_" + id, EmailAddress: email}}
		u.PrimaryEmailAddressID = ptr("idn_" + id)
	}
	return u
}

// show formats a user for failure messages, with the email dereferenced.
func show(u store.User) string {
	email := "<nil>"
	if u.Email != nil {
		email = fmt.Sprintf("%q", *u.Email)
	}
	return fmt.Sprintf("{ID:%s Email:%s FullName:%q ProfilePicture:%q Username:%q ClerkUsername:%q CreatedAt:%d UpdatedAt:%d Deleted:%t DeletedAt:%d}",
		u.ID, email, u.FullName, u.ProfilePicture, u.Username, u.ClerkUsername, u.CreatedAt, u.UpdatedAt, u.Deleted, u.DeletedAt)
}

// expectUser is what a test expects of a user: user exactly (emails compared by value), except
// that when usernamePrefix is set the username only has to be non-empty and start with it.
type expectUser struct {
	user           store.User
	usernamePrefix string
}

func (e expectUser) check(t *testing.T, what string, got store.User) {
	t.Helper()
	want := e.user
	if e.usernamePrefix != "" {
		if got.Username == "" || !strings.HasPrefix(got.Username, e.usernamePrefix) {
			t.Errorf("%s username = %q; want a non-empty username starting with %q", what, got.Username, e.usernamePrefix)
		}
		want.Username = got.Username
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %s\nwant %s", what, show(got), show(want))
	}
}

// checkTombstone fails unless u is a deleted user without personal data, deleted at deletedAt.
func checkTombstone(t *testing.T, u store.User, deletedAt int64) {
	t.Helper()
	if !u.Deleted || u.DeletedAt != deletedAt || u.Email != nil || u.FullName != "" || u.Username != "" || u.ProfilePicture != "" {
		t.Errorf("Get(%s) = %s; want deleted at %d with no email, full_name, username or profile_picture", u.ID, show(u), deletedAt)
	}
}

// examplesDir holds Clerk's example webhook payloads.
var examplesDir = filepath.Join("..", "testdata", "clerk-examples")

// exampleEvent reads an example webhook payload as the event the bridge would send: named after
// Clerk's type, with the timestamp in milliseconds (Clerk's examples use seconds or ms).
func exampleEvent(t *testing.T, file string) event {
	t.Helper()
	body, err := os.ReadFile(filepath.Join(examplesDir, file))
	if err != nil {
		t.Fatal(err)
	}
	var env struct {
		Type      string     `json:"type"`
		Timestamp int64      `json:"timestamp"`
		Data      clerk.User `json:"data"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	ts := env.Timestamp
	if ts < 100_000_000_000 {
		ts *= 1000
	}
	return event{name: clerkevent.Name(env.Type), user: env.Data, ts: ts}
}
