package functions_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sync"
	"testing"

	inngesterrors "github.com/inngest/inngestgo/errors"

	"clerksync/functions"
	"clerksync/store"
	"clerksync/syncevent"
)

// The events the functions emit after a change (Config.Events, package syncevent). The sender
// stands in for the Inngest client at the functions' own interface (EventSender); the e2e test
// (e2e/syncevents_test.go) sends them to the real dev server.

// sentEvents is an EventSender that keeps what it is sent, and fails the next fail sends.
type sentEvents struct {
	mu     sync.Mutex
	events []syncevent.Event
	fail   int
}

func (s *sentEvents) Send(_ context.Context, evt any) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail > 0 {
		s.fail--
		return "", errors.New("inngest: 503 Service Unavailable")
	}
	e, ok := evt.(syncevent.Event)
	if !ok {
		return "", fmt.Errorf("sent a %T; want a syncevent.Event", evt)
	}
	s.events = append(s.events, e)
	return e.ID, nil
}

// take returns the events sent since the last take.
func (s *sentEvents) take() []syncevent.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.events
	s.events = nil
	return out
}

// newEventHarness is newHarnessMode with the events on, sent to the returned sender.
func newEventHarness(t *testing.T, mode store.WriteMode, cfg functions.Config) (*harness, *sentEvents) {
	t.Helper()
	st := srv.Open(t, mode)
	sent := &sentEvents{}
	cfg.AppID, cfg.Events = testAppID, sent
	fns := functions.New(st, st, slog.New(slog.NewTextHandler(t.Output(), nil)), cfg)
	return &harness{t: t, ctx: t.Context(), st: st, fns: fns}, sent
}

// checkSent fails unless got are the events want, in order.
func checkSent(t *testing.T, what string, got []syncevent.Event, want ...syncevent.Event) {
	t.Helper()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s sent %+v; want %+v", what, got, want)
	}
}

// userCreatedFields are the fields a first write of clerkUser(id, first, last, email, image)
// stores, as its event lists them.
var userCreatedFields = []string{"email", "full_name", "profile_picture", "created_at", "username"}

// TestUserEvents: an applied create or update sends one event, named after the change, with
// the deterministic id and the changed fields; a stale update sends none; a duplicate sends
// the same event again (the same id: Inngest drops it); a delete sends one, and its replay the
// same.
func TestUserEvents(t *testing.T) {
	t.Parallel()
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			h, sent := newEventHarness(t, m.mode, functions.Config{})
			v1 := clerkUser("user_1", "Ada", "Lovelace", "ada@example.com", "https://img/1", 1_700_000_000_000)
			v2 := clerkUser("user_1", "Ada", "King", "ada@example.com", "https://img/1", 1_700_000_001_000)
			stale := clerkUser("user_1", "Ada", "Byron", "ada@example.com", "https://img/1", 1_700_000_000_500)
			createdEvt := syncevent.Event{
				ID:   "clerk-sync-user.created-user_1-1700000000000",
				Name: "clerk-sync/user.created",
				Data: syncevent.Data{ID: "user_1", Change: "created", UpdatedAt: 1_700_000_000_000, ChangedFields: userCreatedFields},
			}
			updatedEvt := syncevent.Event{
				ID:   "clerk-sync-user.updated-user_1-1700000001000",
				Name: "clerk-sync/user.updated",
				Data: syncevent.Data{ID: "user_1", Change: "updated", UpdatedAt: 1_700_000_001_000, ChangedFields: []string{"full_name"}},
			}
			deletedEvt := syncevent.Event{
				ID:   "clerk-sync-user.deleted-user_1-1700000002000",
				Name: "clerk-sync/user.deleted",
				Data: syncevent.Data{ID: "user_1", Change: "deleted", UpdatedAt: 1_700_000_002_000, ChangedFields: []string{}},
			}
			for _, c := range []struct {
				what string
				e    event
				out  store.Outcome
				want []syncevent.Event
			}{
				{"create", created(v1), store.Inserted, []syncevent.Event{createdEvt}},
				{"create delivered again", created(v1), store.Skipped, []syncevent.Event{createdEvt}},
				{"update", updated(v2), store.Updated, []syncevent.Event{updatedEvt}},
				{"stale update", updated(stale), store.Skipped, nil},
				{"stale create", created(v1), store.Skipped, nil},
				{"update delivered again", updated(v2), store.Skipped, []syncevent.Event{updatedEvt}},
				{"delete", deleted("user_1", 1_700_000_002_000), store.Deleted, []syncevent.Event{deletedEvt}},
				{"delete delivered again, later", deleted("user_1", 1_700_000_003_000), store.AlreadyDeleted, []syncevent.Event{deletedEvt}},
				{"update after the delete (refused)", updated(clerkUser("user_1", "Ada", "X", "", "", 1_700_000_004_000)), store.Skipped, nil},
			} {
				h.mustSend(c.e, c.out)
				checkSent(t, c.what, sent.take(), c.want...)
			}
		})
	}
}

// TestUserEventSendFails: when the send fails after the write, the step fails (an error
// Inngest retries, not a NoRetryError) with the user stored, and the retry, which finds the
// version stored, sends the very event the first attempt would have sent.
func TestUserEventSendFails(t *testing.T) {
	t.Parallel()
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			h, sent := newEventHarness(t, m.mode, functions.Config{})
			u := clerkUser("user_1", "Ada", "Lovelace", "ada@example.com", "https://img/1", 1_700_000_000_000)
			in := input(created(u).name, u, u.UpdatedAt)
			sent.fail = 1
			_, err := h.fns.SyncUser(h.ctx, in)
			if err == nil || inngesterrors.IsNoRetryError(err) {
				t.Fatalf("SyncUser with the send failing = %v; want an error Inngest retries", err)
			}
			if got := h.get("user_1"); got.FullName != "Ada Lovelace" {
				t.Errorf("user after the failed send = %s; want it stored", show(got))
			}
			checkSent(t, "the failed attempt", sent.take())
			// Inngest retries the step: the same input, the next attempt.
			in.InputCtx.Attempt = 1
			if _, err := h.fns.SyncUser(h.ctx, in); err != nil {
				t.Fatalf("SyncUser retried = %v; want nil", err)
			}
			checkSent(t, "the retry", sent.take(), syncevent.Event{
				ID:   "clerk-sync-user.created-user_1-1700000000000",
				Name: "clerk-sync/user.created",
				Data: syncevent.Data{ID: "user_1", Change: "created", UpdatedAt: 1_700_000_000_000, ChangedFields: userCreatedFields},
			})
		})
	}
}

// TestOrgAndMembershipEvents: the organization and membership functions send their events as
// the user functions do.
func TestOrgAndMembershipEvents(t *testing.T) {
	t.Parallel()
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			h, sent := newEventHarness(t, m.mode, functions.Config{})
			const t1, t2, t3 = 1_700_000_000_000, 1_700_000_001_000, 1_700_000_002_000
			evt := func(object, kind, id string, at int64, fields ...string) syncevent.Event {
				return syncevent.Event{ID: syncevent.ID(object, kind, id, at), Name: "clerk-sync/" + object + "." + kind,
					Data: syncevent.Data{ID: id, Change: kind, UpdatedAt: at, ChangedFields: append([]string{}, fields...)}}
			}
			mem := clerkMember("orgmem_1", "org_1", "user_1", "org:member", t1)
			for _, c := range []struct {
				e    orgEvent
				out  store.Outcome
				want []syncevent.Event
			}{
				{orgCreated(clerkOrg("org_1", "Acme", "acme", t1)), store.Inserted,
					[]syncevent.Event{evt("organization", "created", "org_1", t1, "name", "slug", "image_url", "created_by", "created_at")}},
				{orgUpdated(clerkOrg("org_1", "Acme Inc", "acme", t2)), store.Updated,
					[]syncevent.Event{evt("organization", "updated", "org_1", t2, "name")}},
				{orgUpdated(clerkOrg("org_1", "Acme Old", "acme", t1)), store.Skipped, nil},
				{memCreated(mem), store.Inserted,
					[]syncevent.Event{evt("organizationMembership", "created", "orgmem_1", t1, "org_id", "user_id", "role", "created_at")}},
				{memCreated(mem), store.Skipped,
					[]syncevent.Event{evt("organizationMembership", "created", "orgmem_1", t1, "org_id", "user_id", "role", "created_at")}},
				{memUpdated(clerkMember("orgmem_1", "org_1", "user_1", "org:admin", t2)), store.Updated,
					[]syncevent.Event{evt("organizationMembership", "updated", "orgmem_1", t2, "role")}},
				{memDeleted(mem, t3), store.Deleted, []syncevent.Event{evt("organizationMembership", "deleted", "orgmem_1", t3)}},
				{orgDeleted("org_1", t3), store.Deleted, []syncevent.Event{evt("organization", "deleted", "org_1", t3)}},
				{orgUpdated(clerkOrg("org_1", "Acme Again", "acme", t3+1)), store.Skipped, nil},
			} {
				h.mustSendOrg(c.e, c.out)
				checkSent(t, c.e.String(), sent.take(), c.want...)
			}
		})
	}
}

// TestBatchEvents: a batched run (INNGEST_BATCH_SIZE above 1) sends one event per user it
// applies, and none for a stale one.
func TestBatchEvents(t *testing.T) {
	t.Parallel()
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			h, sent := newEventHarness(t, m.mode, functions.Config{BatchSize: 10})
			const t1, t2 = 1_700_000_000_000, 1_700_000_001_000
			h.mustSend(updated(clerkUser("user_b", "Bea", "New", "", "", t2)), store.Inserted)
			sent.take()
			in := batchInput(
				clerkUser("user_a", "Al", "A", "", "", t1),
				clerkUser("user_b", "Bea", "Old", "", "", t1), // stale: user_b is stored at t2
				clerkUser("user_c", "Cy", "C", "", "", t1),
			)
			if _, err := h.fns.SyncUser(h.ctx, in); err != nil {
				t.Fatalf("SyncUser(batch of 3) = %v", err)
			}
			got := map[string]syncevent.Event{}
			for _, e := range sent.take() {
				if _, dup := got[e.Data.ID]; dup {
					t.Errorf("batch sent two events for %s", e.Data.ID)
				}
				got[e.Data.ID] = e
			}
			fields := userCreatedFields // email too: an insert stores it, null here
			want := map[string]syncevent.Event{
				"user_a": {ID: syncevent.ID("user", "created", "user_a", t1), Name: syncevent.UserCreated,
					Data: syncevent.Data{ID: "user_a", Change: "created", UpdatedAt: t1, ChangedFields: fields}},
				"user_c": {ID: syncevent.ID("user", "created", "user_c", t1), Name: syncevent.UserCreated,
					Data: syncevent.Data{ID: "user_c", Change: "created", UpdatedAt: t1, ChangedFields: fields}},
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("batch of user_a, stale user_b, user_c sent %+v; want %+v", got, want)
			}
		})
	}
}
