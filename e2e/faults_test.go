package e2e

import (
	"cmp"
	"context"
	"fmt"
	"math/rand"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"clerksync/store"
)

// The fault tests inject failures into the running stack (real dev server, real FerretDB) and
// count what reached the database afterwards.

// signUp returns the user.created event of burst user i of a test.
func signUp(prefix string, i int) (id string, body []byte) {
	id = fmt.Sprintf("user_%s%04d", prefix, i)
	return id, clerkUserEvent("user.created", id, "Fault", fmt.Sprintf("%s@host%d.example", prefix, i), 1700000000000)
}

func TestFaultDatabaseOutageDuringBurst(t *testing.T) {
	stacks(t)
	eachWriteMode(t, func(t *testing.T, mode string) {
		s := startStack(t, stackOptions{dbProxy: true, retryInterval: 3, writeMode: mode})
		const n = 500
		ids, bodies := make([]string, n), make([][]byte, n)
		for i := range n {
			ids[i], bodies[i] = signUp("dbout", i)
		}
		var restored sync.WaitGroup
		cutAt := time.Time{}
		codes := s.postAll(bodies, ids, func(i int) {
			if i == n/5 {
				s.dbProxy.cut()
				cutAt = time.Now()
				restored.Add(1)
				go func() {
					defer restored.Done()
					time.Sleep(10 * time.Second)
					s.dbProxy.restore(t)
				}()
			}
		})
		restored.Wait()
		t.Logf("injected: database unreachable for %v from sign-up %d of %d (proxy cut: connections closed, new ones refused)", time.Since(cutAt).Round(time.Second), n/5, n)
		for i, c := range codes {
			if c != http.StatusOK {
				t.Fatalf("POST sign-up %d = %d; want 200 (the webhook never touches the database)", i, c)
			}
		}
		start := time.Now()
		s.waitAllUsers(t, ids, burstWait)
		t.Logf("counted: %d webhooks answered 200; all %d users stored once with distinct usernames, %v after the database came back", n, n, time.Since(start).Round(time.Second))
	})
}

func TestFaultServiceKilledDuringBurst(t *testing.T) {
	stacks(t)
	eachWriteMode(t, func(t *testing.T, mode string) {
		s := startStack(t, stackOptions{fixedPort: true, retryInterval: 2, writeMode: mode})
		const n = 300
		ids, bodies := make([]string, n), make([][]byte, n)
		for i := range n {
			ids[i], bodies[i] = signUp("kill", i)
		}
		var restarted sync.WaitGroup
		codes := s.postAll(bodies, ids, func(i int) {
			time.Sleep(15 * time.Millisecond) // spread the burst over the kill and the restart
			if i == n/3 {
				s.killService()
				restarted.Add(1)
				go func() {
					defer restarted.Done()
					time.Sleep(2 * time.Second)
					s.restartService(t)
				}()
			}
		})
		restarted.Wait()
		var accepted, failed []int
		for i, c := range codes {
			if c >= 200 && c < 300 {
				accepted = append(accepted, i)
			} else {
				failed = append(failed, i)
			}
		}
		t.Logf("injected: SIGKILL of the service at sign-up %d of %d, restarted 2s later; %d webhooks got 2xx, %d failed", n/3, n, len(accepted), len(failed))
		if len(failed) == 0 {
			t.Logf("no webhook failed: the kill fell between requests")
		}
		// Svix re-sends what failed, with the same id (resend).
		s.resend(t, bodies, ids, failed)
		s.waitAllUsers(t, ids, burstWait)
		t.Logf("counted: all %d users stored once (%d accepted first time, %d re-sent)", n, len(accepted), len(failed))
	})
}

func TestFaultDevServerBlackHole(t *testing.T) {
	parallel(t)
	// A dev server that accepts connections and never answers.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var open atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			open.Add(1)
			go func() {
				buf := make([]byte, 4096)
				for {
					if _, err := c.Read(buf); err != nil {
						break
					}
				}
				c.Close()
				open.Add(-1)
			}()
		}
	}()
	db := newDatabase(t, "blackhole")
	svc := startService(t, map[string]string{
		"PORT":                         "0",
		"CLERK_WEBHOOK_SIGNING_SECRET": fixedSecret,
		"INNGEST_DEV":                  "http://" + ln.Addr().String(),
		"MONGODB_URI":                  db.uri,
		"WEBHOOK_FORWARD_TIMEOUT":      "4s",
	})
	s := newPoster(t, fixedSecret, svc.url)
	start := time.Now()
	code, err := s.post(clerkUserEvent("user.created", "user_bh", "Hole", "bh@example.org", 1700000000000), "msg_bh")
	took := time.Since(start)
	if err != nil || code != http.StatusServiceUnavailable || took > 5*time.Second {
		t.Fatalf("POST with a dev server that never answers = %d, %v after %v; want 503 within WEBHOOK_FORWARD_TIMEOUT (4s) + 1s", code, err, took)
	}
	if _, err := db.store.Get(context.Background(), "user_bh"); err != store.ErrNotFound {
		t.Errorf("user_bh: %v; want nothing written", err)
	}
	// The SDK's own attempts time out too: no connection is left hanging.
	deadline := time.Now().Add(20 * time.Second)
	for open.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("injected: event API accepting connections and never answering; counted: 503 after %v, %d connections still open afterwards", took.Round(10*time.Millisecond), open.Load())
	if open.Load() > 0 {
		t.Errorf("%d connections to the unresponsive dev server still open 20s later; want none", open.Load())
	}
}

// mixedUser is the model of one user in the mixed-load test.
type mixedUser struct {
	id       string
	newest   int64
	name     string
	deleted  bool
	deleteAt int64
}

// testMixedLoad: 2,000 creates, updates, deletes and duplicates for 300 users, shuffled, 50
// at a time: the database ends equal to the model.
func (s *stack) testMixedLoad(t *testing.T) {
	rng := rand.New(rand.NewSource(20261129))
	const users = 300
	type delivery struct {
		id   string
		body []byte
	}
	var deliveries []delivery
	model := make([]mixedUser, users)
	for u := range users {
		m := &model[u]
		m.id = fmt.Sprintf("user_mix%03d", u)
		updates := 1 + rng.Intn(5)
		for k := 0; k <= updates; k++ {
			at := int64(1700000000000 + k*1000)
			typ := "user.updated"
			if k == 0 {
				typ = "user.created"
			}
			name := fmt.Sprintf("Mix%dv%d", u, k)
			deliveries = append(deliveries, delivery{fmt.Sprintf("msg_mix_%d_%d", u, k), clerkUserEvent(typ, m.id, name, fmt.Sprintf("mix%d.v%d@example.org", u, k), at)})
			if at > m.newest {
				m.newest, m.name = at, name+" Tester"
			}
		}
		if rng.Intn(10) < 3 {
			m.deleted, m.deleteAt = true, 1700000100000
			deliveries = append(deliveries, delivery{fmt.Sprintf("msg_mix_%d_del", u), clerkDeleteEvent(m.id, m.deleteAt)})
		}
	}
	distinct := len(deliveries)
	for len(deliveries) < 2000 { // Svix re-deliveries of the same messages
		deliveries = append(deliveries, deliveries[rng.Intn(distinct)])
	}
	rng.Shuffle(len(deliveries), func(i, j int) { deliveries[i], deliveries[j] = deliveries[j], deliveries[i] })
	bodies, ids := make([][]byte, len(deliveries)), make([]string, len(deliveries))
	for i, d := range deliveries {
		bodies[i], ids[i] = d.body, d.id
	}
	start := time.Now()
	codes := s.postAll(bodies, ids, nil)
	for i, c := range codes {
		if c != http.StatusOK {
			t.Fatalf("POST delivery %d (%s) = %d; want 200", i, ids[i], c)
		}
	}
	t.Logf("injected: %d deliveries (%d distinct events, %d duplicates) for %d users, shuffled, 50 at a time, in %v",
		len(deliveries), distinct, len(deliveries)-distinct, users, time.Since(start).Round(time.Millisecond))

	// differs returns how the stored user differs from its model, or "" when it does not.
	differs := func(m mixedUser) string {
		got, err := s.store.Get(context.Background(), m.id)
		ok := err == nil
		if m.deleted {
			ok = ok && isTombstone(got, err) && got.DeletedAt == m.deleteAt
		} else {
			ok = ok && !got.Deleted && got.UpdatedAt == m.newest && got.FullName == m.name
		}
		if ok {
			return ""
		}
		return fmt.Sprintf("%s: got %+v, %v; want %+v", m.id, got, err, m)
	}
	// Each poll reads the users that did not equal their model yet, in order, up to the first
	// that still differs (arrived); once all have, all are read again: one changed since it
	// first did would differ now.
	pending := model
	for deadline := time.Now().Add(burstWait); ; time.Sleep(time.Second) {
		pending = pending[arrived(pending, func(m mixedUser) bool { return differs(m) == "" }):]
		if len(pending) == 0 {
			break
		}
		if time.Now().After(deadline) {
			var example string
			still := 0
			for _, m := range pending {
				if why := differs(m); why != "" {
					still++
					example = cmp.Or(example, why)
				}
			}
			t.Fatalf("%d of %d users differ from the model after %v, e.g. %s", still, users, burstWait, example)
		}
	}
	for _, m := range model {
		if why := differs(m); why != "" {
			t.Errorf("once every user equalled the model, %s", why)
		}
	}
	deleted, live := 0, map[string]bool{}
	for _, m := range model {
		if m.deleted {
			deleted++
			continue
		}
		u, _ := s.store.Get(context.Background(), m.id)
		if live[u.Username] {
			t.Errorf("username %q is not unique among live users", u.Username)
		}
		live[u.Username] = true
	}
	t.Logf("counted: all %d users equal the model (%d live with the newest updated_at, %d deleted without personal data) %v after the last post",
		users, users-deleted, deleted, time.Since(start).Round(time.Second))
}

// fixedSecret is a signing secret for tests that need no fresh one.
const fixedSecret = "whsec_ZmF1bHQtdGVzdHMtc2lnbmluZy1zZWNyZXQtMDE="
