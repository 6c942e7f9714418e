package e2e

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/inngest/inngestgo"

	"clerksync/store"
	"clerksync/syncevent"
)

// workflowAppID is the Inngest app of the test's own workflows, beside the service's.
const workflowAppID = "e2e-workflows"

// seenEvent is what a workflow of the test saw: the event, and, for the welcome workflow, the
// user it read from the database when it ran.
type seenEvent struct {
	id    string
	event syncevent.Data
	user  store.User
	err   error
}

// workflows is a second Inngest app served by the test process, as a user of the service
// would write one: a welcome workflow triggered by clerk-sync/user.created that reads the
// user from the database, and one that notes every clerk-sync/user.updated.
type workflows struct {
	mu       sync.Mutex
	welcomed []seenEvent
	updated  []seenEvent
}

// startWorkflows serves the workflows on 127.0.0.1:port, with a client of the dev server at
// devURL (which syncs them: they are among its sdk-url), reading users from db.
func startWorkflows(t *testing.T, port int, devURL string, db *store.Store) *workflows {
	t.Helper()
	w := &workflows{}
	client, err := inngestgo.NewClient(inngestgo.ClientOpts{
		AppID:           workflowAppID,
		Logger:          slog.New(slog.NewTextHandler(io.Discard, nil)),
		Dev:             inngestgo.BoolPtr(true),
		EventKey:        inngestgo.StrPtr("dev"),
		APIBaseURL:      &devURL,
		EventAPIBaseURL: &devURL,
		AllowInBandSync: inngestgo.BoolPtr(false),
	})
	if err != nil {
		t.Fatal(err)
	}
	eventID := func(id *string) string {
		if id == nil {
			return ""
		}
		return *id
	}
	if _, err := inngestgo.CreateFunction(client, inngestgo.FunctionOpts{ID: "welcome-email"},
		inngestgo.EventTrigger(syncevent.UserCreated, nil),
		func(ctx context.Context, in inngestgo.Input[syncevent.Data]) (any, error) {
			u, err := db.Get(ctx, in.Event.Data.ID)
			w.mu.Lock()
			w.welcomed = append(w.welcomed, seenEvent{id: eventID(in.Event.ID), event: in.Event.Data, user: u, err: err})
			w.mu.Unlock()
			return nil, nil
		}); err != nil {
		t.Fatal(err)
	}
	if _, err := inngestgo.CreateFunction(client, inngestgo.FunctionOpts{ID: "note-update"},
		inngestgo.EventTrigger(syncevent.UserUpdated, nil),
		func(ctx context.Context, in inngestgo.Input[syncevent.Data]) (any, error) {
			w.mu.Lock()
			w.updated = append(w.updated, seenEvent{id: eventID(in.Event.ID), event: in.Event.Data})
			w.mu.Unlock()
			return nil, nil
		}); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: client.Serve(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return w
}

// seen returns copies of what the workflows saw so far.
func (w *workflows) seen() (welcomed, updated []seenEvent) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.welcomed), slices.Clone(w.updated)
}

// TestSyncEventsTriggerWorkflows: with SYNC_EVENTS=1, a workflow triggered by the service's
// clerk-sync/user.created finds the user in the database when it runs; an update applied
// triggers clerk-sync/user.updated once, and a stale update (older than the stored user)
// triggers nothing. It runs in the default write mode: the store's and the functions' tests
// cover the already-stored version, which a retry sends again, in both modes.
func TestSyncEventsTriggerWorkflows(t *testing.T) {
	stacks(t)
	const mode = "auto"
	port := freePort(t)
	var w *workflows
	s := startStack(t, stackOptions{writeMode: mode, countCalls: true, env: map[string]string{"SYNC_EVENTS": "1"},
		otherApps: []string{fmt.Sprintf("http://127.0.0.1:%d/api/inngest", port)},
		beforeDev: func(s *stack) { w = startWorkflows(t, port, s.devURL, s.store) }})
	s.waitFor(t, 60*time.Second, "the dev server syncs the workflows' app", func() bool {
		var fns []struct {
			Slug string `json:"slug"`
		}
		return s.devGet("/v1/apps/"+workflowAppID+"/functions", &fns) == nil && len(fns) == 2
	})

	const id, t1, t2, stale = "user_evt1", 1700000001000, 1700000002000, 1700000001500
	s.mustPost(t, clerkUserEvent("user.created", id, "Ada", "ada@example.org", t1), "msg_evt_create", http.StatusOK)
	s.waitFor(t, 60*time.Second, "the welcome workflow runs", func() bool {
		welcomed, _ := w.seen()
		return len(welcomed) > 0
	})
	welcomed, _ := w.seen()
	wantID := syncevent.ID(syncevent.ObjectUser, syncevent.Created, id, t1)
	if got := welcomed[0]; got.err != nil || got.user.ID != id || got.user.FullName != "Ada Tester" || got.user.UpdatedAt != t1 ||
		got.id != wantID || got.event.ID != id || got.event.Change != syncevent.Created || got.event.UpdatedAt != t1 {
		t.Errorf("welcome workflow saw event %s %+v and read the user %+v, %v; want event %s about %s, and the user stored (Ada Tester at %d)",
			got.id, got.event, got.user, got.err, wantID, id, t1)
	}

	s.mustPost(t, clerkUserEvent("user.updated", id, "Grace", "ada@example.org", t2), "msg_evt_update", http.StatusOK)
	s.waitFor(t, 60*time.Second, "the update workflow runs", func() bool {
		_, updated := w.seen()
		return len(updated) > 0
	})
	s.mustPost(t, clerkUserEvent("user.updated", id, "Stale", "ada@example.org", stale), "msg_evt_stale", http.StatusOK)
	if runs := s.waitRunsSettled(t, "clerk-msg_evt_stale"); len(runs) != 1 || runs[0].Output.Outcome != string(store.Skipped) {
		t.Errorf("runs of the stale update = %+v; want one, skipped", runs)
	}
	// The stale update's step has ended: an event it sent would have been sent by now, and
	// its workflow run started within the dev server's scheduling delay.
	time.Sleep(5 * time.Second)
	welcomed, updated := w.seen()
	wantUpdate := seenEvent{id: syncevent.ID(syncevent.ObjectUser, syncevent.Updated, id, t2),
		event: syncevent.Data{ID: id, Change: syncevent.Updated, UpdatedAt: t2, ChangedFields: []string{"full_name"}}}
	if len(updated) != 1 || updated[0].id != wantUpdate.id || !slices.Equal(updated[0].event.ChangedFields, wantUpdate.event.ChangedFields) ||
		updated[0].event.UpdatedAt != t2 {
		t.Errorf("update workflow runs = %+v; want one, for %+v (none for the stale update)", updated, wantUpdate)
	}
	if len(welcomed) != 1 {
		t.Errorf("welcome workflow runs = %d; want 1", len(welcomed))
	}
}
