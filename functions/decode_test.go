package functions_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	inngesterrors "github.com/inngest/inngestgo/errors"

	"clerksync/clerk"
	clerkevent "clerksync/clerk/event"
	"clerksync/functions"
	"clerksync/store"
)

// TestUnreadableDataIsNotRetried: each sync function given data it cannot decode into its
// Clerk object (a number for a string, an object for a list) fails at once with a
// NoRetryError that says what is wrong and names the event, counts the attempt as invalid,
// and writes nothing.
func TestUnreadableDataIsNotRetried(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		function string
		event    string
		data     string
		bad      error
		stored   string // "user", "organization" or "membership" id the data names: must stay unwritten
	}{
		{"user id a number", functions.SyncUserID, clerkevent.UserCreated, `{"id":42,"updated_at":1}`, clerk.ErrBadUser, ""},
		{"email_addresses an object", functions.UpdateUserID, clerkevent.UserUpdated,
			`{"id":"user_unreadable","email_addresses":{"id":"idn_1","email_address":"a@x.org"},"updated_at":1}`, clerk.ErrBadUser, "user user_unreadable"},
		{"deleted user id a number", functions.DeleteUserID, clerkevent.UserDeleted, `{"id":42,"deleted":true}`, clerk.ErrBadUser, ""},
		{"organization updated_at a string", functions.SyncOrganizationID, clerkevent.OrganizationCreated,
			`{"id":"org_unreadable","name":"N","updated_at":"yesterday"}`, clerk.ErrBadOrganization, "organization org_unreadable"},
		{"organization name a list", functions.UpdateOrganizationID, clerkevent.OrganizationUpdated,
			`{"id":"org_unreadable2","name":["N"],"updated_at":1}`, clerk.ErrBadOrganization, "organization org_unreadable2"},
		{"deleted organization id a number", functions.DeleteOrganizationID, clerkevent.OrganizationDeleted, `{"id":42,"deleted":true}`, clerk.ErrBadOrganization, ""},
		{"membership organization a string", functions.SyncMembershipID, clerkevent.MembershipCreated,
			`{"id":"orgmem_unreadable","organization":"org_1","public_user_data":{"user_id":"user_1"},"updated_at":1}`, clerk.ErrBadMembership, "membership orgmem_unreadable"},
		{"membership role a number", functions.UpdateMembershipID, clerkevent.MembershipUpdated,
			`{"id":"orgmem_unreadable2","role":7,"organization":{"id":"org_1"},"public_user_data":{"user_id":"user_1"},"updated_at":1}`, clerk.ErrBadMembership, "membership orgmem_unreadable2"},
		{"deleted membership id a number", functions.DeleteMembershipID, clerkevent.MembershipDeleted, `{"id":42}`, clerk.ErrBadMembership, ""},
	}
	st := openStore(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := &countingMetrics{}
			fns := functions.New(st, st, slog.New(slog.NewTextHandler(t.Output(), nil)), functions.Config{AppID: testAppID, Metrics: m})
			run := map[string]func(context.Context, functions.Input) (any, error){
				functions.SyncUserID: fns.SyncUser, functions.UpdateUserID: fns.UpdateUser, functions.DeleteUserID: fns.DeleteUser,
				functions.SyncOrganizationID: fns.SyncOrganization, functions.UpdateOrganizationID: fns.UpdateOrganization,
				functions.DeleteOrganizationID: fns.DeleteOrganization, functions.SyncMembershipID: fns.SyncMembership,
				functions.UpdateMembershipID: fns.UpdateMembership, functions.DeleteMembershipID: fns.DeleteMembership,
			}[tc.function]
			in := rawInput(tc.event, json.RawMessage(tc.data), 1700000000000)
			res, err := run(t.Context(), in)
			if res != nil || !inngesterrors.IsNoRetryError(err) || !errors.Is(err, tc.bad) {
				t.Fatalf("%s(%s) = %v, %v; want a NoRetryError wrapping %q", tc.function, tc.data, res, err, tc.bad)
			}
			var typeErr *json.UnmarshalTypeError
			if msg := err.Error(); !errors.As(err, &typeErr) || !strings.Contains(msg, *in.Event.ID) || !strings.Contains(msg, "cannot be read") {
				t.Errorf("%s error = %q; want it to wrap the decoder's error, say the data cannot be read and name event %s", tc.function, msg, *in.Event.ID)
			}
			if got, want := m.snapshot(), map[string]int{tc.function + "/" + functions.OutcomeInvalid: 1}; !reflect.DeepEqual(got, want) {
				t.Errorf("FunctionRun calls = %v; want %v", got, want)
			}
			if kind, id, ok := strings.Cut(tc.stored, " "); ok {
				var err error
				switch kind {
				case "user":
					_, err = st.Get(t.Context(), id)
				case "organization":
					_, err = st.GetOrganization(t.Context(), id)
				default:
					_, err = st.GetMembership(t.Context(), id)
				}
				if !errors.Is(err, store.ErrNotFound) {
					t.Errorf("after %s: reading %s back = %v; want ErrNotFound (nothing written)", tc.function, tc.stored, err)
				}
			}
		})
	}
}

// TestBatchRecordsUnreadableEvents: an event of a batch whose data cannot be decoded is
// recorded in sync_failures at once, under its own event id (and the user id its data names),
// while the rest of the batch is written; the run completes, so Inngest retries nothing.
func TestBatchRecordsUnreadableEvents(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	m := &countingMetrics{}
	fns := functions.New(h.st, h.st, slog.New(slog.NewTextHandler(t.Output(), nil)), functions.Config{AppID: testAppID, Metrics: m})
	in := rawBatch(clerkevent.UserCreated,
		batchItem{data: mustJSON(clerkUser("user_bx_good", "Good", "One", "good@x.org", "", t1)), ts: t1, key: "good"},
		batchItem{data: json.RawMessage(`{"id":42,"updated_at":1}`), ts: t1, key: "idnumber"},
		batchItem{data: json.RawMessage(`{"id":"user_bx_emails","email_addresses":{"id":"idn_1"},"updated_at":1}`), ts: t1, key: "emails"},
	)
	since := time.Now()
	res, err := fns.SyncUser(h.ctx, in)
	if err != nil {
		t.Fatalf("SyncUser(batch) = %v; want the run to complete", err)
	}
	r, ok := res.(functions.BatchResult)
	if !ok || len(r.Written) != 1 || r.Written[0].UserID != "user_bx_good" || len(r.Failed) != 2 {
		t.Fatalf("SyncUser(batch) result = %#v; want user_bx_good written and 2 events failed", res)
	}
	fnID := testAppID + "-" + functions.SyncUserID
	got := failuresSince(t, h.st, since)
	want := []store.Failure{
		{RunID: in.InputCtx.RunID, FunctionID: fnID, EventID: eventID(in, 1), EventName: clerkevent.UserCreated},
		{RunID: in.InputCtx.RunID, FunctionID: fnID, EventID: eventID(in, 2), EventName: clerkevent.UserCreated, UserID: "user_bx_emails"},
	}
	for i := range got {
		if !strings.Contains(got[i].Error, clerk.ErrBadUser.Error()) || !strings.Contains(got[i].Error, "cannot be read") || !strings.Contains(got[i].Error, got[i].EventID) {
			t.Errorf("failure of %s has error %q; want it to say the data cannot be read and name the event", got[i].EventID, got[i].Error)
		}
		got[i].Error = ""
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Failures =\n %+v\nwant (errors aside)\n %+v", got, want)
	}
	if u := h.get("user_bx_good"); u.FullName != "Good One" {
		t.Errorf("Get(user_bx_good) = %s; want it written", show(u))
	}
	if got, want := m.snapshot(), map[string]int{"sync-user-from-clerk/inserted": 1, "sync-user-from-clerk/invalid": 2}; !reflect.DeepEqual(got, want) {
		t.Errorf("FunctionRun calls = %v; want %v", got, want)
	}
}

// TestDataKeepsTheJSON: Data holds the JSON it is decoded from and marshals back to it, as the
// SDK's decoding of an event needs.
func TestDataKeepsTheJSON(t *testing.T) {
	var evt functions.Event
	raw := `{"name":"clerk/user.created","id":"clerk-msg_1","ts":5,"data":{"id":42,"email_addresses":{"x":1}}}`
	if err := json.Unmarshal([]byte(raw), &evt); err != nil {
		t.Fatalf("decoding an event with unreadable data: %v; want no error (the function decodes the data)", err)
	}
	if got, want := string(evt.Data.JSON), `{"id":42,"email_addresses":{"x":1}}`; got != want {
		t.Errorf("Data.JSON = %s; want %s", got, want)
	}
	b, err := json.Marshal(evt.Data)
	if err != nil || string(b) != string(evt.Data.JSON) {
		t.Errorf("json.Marshal(Data) = %s, %v; want %s", b, err, evt.Data.JSON)
	}
	if b, err := json.Marshal(functions.Data{}); err != nil || string(b) != "null" {
		t.Errorf("json.Marshal(Data{}) = %s, %v; want null", b, err)
	}
}
