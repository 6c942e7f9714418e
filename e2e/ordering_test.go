package e2e

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/inngest/inngestgo"

	"clerksync/clerk/event"
	"clerksync/functions"
	"clerksync/store"
)

// overlapProbe is the user store with a detector of overlapping writes: it holds each write
// open for hold, and counts the writes that started while another write of the same user was
// still running.
type overlapProbe struct {
	next *store.Store
	hold time.Duration

	mu       sync.Mutex
	inFlight map[string]int
	overlaps int
	writes   int
}

func (p *overlapProbe) enter(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.inFlight[id] > 0 {
		p.overlaps++
	}
	p.inFlight[id]++
	p.writes++
}

func (p *overlapProbe) leave(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.inFlight[id]--
}

func (p *overlapProbe) UpsertUserChange(ctx context.Context, u store.User) (store.Change, error) {
	p.enter(u.ID)
	defer p.leave(u.ID)
	time.Sleep(p.hold)
	return p.next.UpsertUserChange(ctx, u)
}

func (p *overlapProbe) DeleteUserChange(ctx context.Context, id string, deletedAt int64) (store.Change, error) {
	p.enter(id)
	defer p.leave(id)
	time.Sleep(p.hold)
	return p.next.DeleteUserChange(ctx, id, deletedAt)
}

// busy returns how many writes are running.
func (p *overlapProbe) busy() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, k := range p.inFlight {
		n += k
	}
	return n
}

func (p *overlapProbe) counts() (writes, overlaps int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.writes, p.overlaps
}

// TestInngestSerialisesWritesPerUser runs the user functions, with their per-user concurrency
// limit and without it, under the real Inngest server, and sends a burst of interleaved
// events for a few users at once. With the limit the server never runs two writes of one user
// at the same time; without it, it does (which shows the probe can see an overlap).
func TestInngestSerialisesWritesPerUser(t *testing.T) {
	stacks(t)
	tests := []struct {
		name        string
		without     bool
		wantOverlap bool
	}{
		{"with the per-user limit", false, false},
		{"without it", true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { countOverlaps(t, tt.without, tt.wantOverlap, false) })
	}
}

// TestConnectSerialisesWritesPerUser is TestInngestSerialisesWritesPerUser in Connect mode: the
// functions run over a Connect worker of the test's own, and the per-user limit still keeps a
// user's writes from overlapping, where without it they overlap.
func TestConnectSerialisesWritesPerUser(t *testing.T) {
	stacks(t)
	t.Run("with the per-user limit", func(t *testing.T) { countOverlaps(t, false, false, true) })
	t.Run("without it", func(t *testing.T) { countOverlaps(t, true, true, true) })
}

// countOverlaps runs the user functions (with the per-user limit, or without it) in this
// process against the real dev server, served over HTTP or, with connect, over a Connect
// worker; sends 26 events for 4 users at once; and checks that every event was written once,
// whether writes of one user overlapped (wantOverlap), and the users' end states.
func countOverlaps(t *testing.T, without, wantOverlap, connect bool) {
	s := &stack{bin: devServerBinary(t), dir: t.TempDir()}
	s.devPort = freePort(t)
	s.devURL = fmt.Sprintf("http://127.0.0.1:%d", s.devPort)
	users := newDatabase(t, "ordering").store
	probe := &overlapProbe{next: users, hold: 150 * time.Millisecond, inFlight: map[string]int{}}

	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	// The service's client options in dev mode (inngest.go's inngestOptions).
	client, err := inngestgo.NewClient(inngestgo.ClientOpts{
		AppID:           "clerk-user-sync",
		Logger:          logger,
		Dev:             inngestgo.BoolPtr(true),
		EventKey:        inngestgo.StrPtr("dev"),
		APIBaseURL:      &s.devURL,
		EventAPIBaseURL: &s.devURL,
		AllowInBandSync: inngestgo.BoolPtr(false),
	})
	if err != nil {
		t.Fatal(err)
	}
	fns := functions.New(probe, users, logger, functions.Config{AppID: client.AppID(), WithoutUserOrdering: without})
	if err := fns.Register(client); err != nil {
		t.Fatal(err)
	}
	if connect {
		s.opts.connect = true // the dev server has no app URL: the worker dials it
		s.writeDevConfig(t)
		s.startDevServer(t)
		ctx, cancel := context.WithCancel(context.Background())
		instance := "e2e-ordering"
		conn, err := inngestgo.Connect(ctx, inngestgo.ConnectOpts{Apps: []inngestgo.Client{client}, InstanceID: &instance})
		if err != nil {
			cancel()
			t.Fatalf("connect to the dev server: %v", err)
		}
		t.Cleanup(func() {
			_ = conn.Close()
			cancel()
		})
		s.waitDev(t, "list the worker's functions", connectSyncWait, func() bool {
			var fns []struct {
				Slug string `json:"slug"`
			}
			return s.devGet("/v1/apps/clerk-user-sync/functions", &fns) == nil && len(fns) > 0
		})
	} else {
		app := httptest.NewServer(client.Serve())
		t.Cleanup(app.Close)
		s.appURL = app.URL
		s.writeDevConfig(t)
		s.startDevServer(t)
	}

	// 4 users, each created, updated 5 times and (two of them) deleted: 26 events,
	// shuffled and sent at once.
	type ev struct {
		name string
		data map[string]any
	}
	var events []ev
	want := map[string]int64{}
	for u := range 4 {
		id := fmt.Sprintf("user_order_%d", u)
		for v := range 6 {
			at := int64(1700000000000 + v*1000)
			name := event.UserUpdated
			if v == 0 {
				name = event.UserCreated
			}
			events = append(events, ev{name, map[string]any{"id": id, "first_name": fmt.Sprintf("V%d", v), "created_at": 1700000000000, "updated_at": at}})
			want[id] = at
		}
		if u < 2 {
			events = append(events, ev{event.UserDeleted, map[string]any{"id": id, "deleted": true, "object": "user"}})
			want[id] = -1
		}
	}
	rand.Shuffle(len(events), func(i, j int) { events[i], events[j] = events[j], events[i] })
	var wg sync.WaitGroup
	for i, e := range events {
		wg.Go(func() {
			id := fmt.Sprintf("clerk-msg_order_%d", i)
			evt := inngestgo.Event{ID: &id, Name: e.name, Data: e.data, Timestamp: time.Now().UnixMilli()}
			if _, err := client.Send(context.Background(), evt); err != nil {
				t.Errorf("send %s: %v", e.name, err)
			}
		})
	}
	wg.Wait()

	// Every event written once (the probe sees one write per run) and no write still
	// running, then the overlaps.
	deadline := time.Now().Add(60 * time.Second)
	for {
		if writes, _ := probe.counts(); writes >= len(events) && probe.busy() == 0 {
			break
		}
		if time.Now().After(deadline) {
			writes, _ := probe.counts()
			t.Fatalf("writes seen = %d after 60s; want %d; dev server log:\n%s", writes, len(events), s.devLog())
		}
		time.Sleep(100 * time.Millisecond)
	}
	writes, overlaps := probe.counts()
	t.Logf("%d writes, %d overlapping another write of the same user", writes, overlaps)
	if got := overlaps > 0; got != wantOverlap {
		t.Errorf("overlapping writes of one user = %d; want overlap %v", overlaps, wantOverlap)
	}
	for id, at := range want {
		u, err := users.Get(context.Background(), id)
		switch {
		case err != nil:
			t.Errorf("user %s: %v", id, err)
		case at < 0 && !u.Deleted:
			t.Errorf("user %s = %+v; want deleted", id, u)
		case at > 0 && u.UpdatedAt != at:
			t.Errorf("user %s updated_at = %d; want %d", id, u.UpdatedAt, at)
		}
	}
}
