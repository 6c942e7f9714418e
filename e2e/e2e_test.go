package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"clerksync/store"
)

// clerkUserEvent returns a user.created or user.updated envelope for a test user without a
// Clerk username.
func clerkUserEvent(typ, id, first, email string, updatedAt int64) []byte {
	return clerkUserEventNamed(typ, id, first, email, "", updatedAt)
}

// clerkUserEventNamed is clerkUserEvent with the Clerk username username ("" for null).
func clerkUserEventNamed(typ, id, first, email, username string, updatedAt int64) []byte {
	var name any
	if username != "" {
		name = username
	}
	data := map[string]any{
		"object": "user", "id": id, "first_name": first, "last_name": "Tester", "username": name,
		"image_url": "https://img.clerk.com/" + id, "created_at": 1700000000000, "updated_at": updatedAt,
		"primary_email_address_id": nil, "email_addresses": []any{},
	}
	if email != "" {
		data["primary_email_address_id"] = "idn_" + id
		data["email_addresses"] = []any{map[string]any{"id": "idn_" + id, "email_address": email, "object": "email_address"}}
	}
	b, _ := json.Marshal(map[string]any{"object": "event", "type": typ, "timestamp": updatedAt, "data": data})
	return b
}

// clerkDeleteEvent returns a user.deleted envelope.
func clerkDeleteEvent(id string, ts int64) []byte {
	b, _ := json.Marshal(map[string]any{"object": "event", "type": "user.deleted", "timestamp": ts,
		"data": map[string]any{"object": "user", "id": id, "deleted": true}})
	return b
}

func isTombstone(u store.User, err error) bool {
	return err == nil && u.Deleted && u.Email == nil && u.FullName == "" && u.Username == "" && u.ProfilePicture == ""
}

// endToEndCase is one guarantee test run against a shared stack.
type endToEndCase struct {
	name  string
	burst bool
	run   func(s *stack, t *testing.T)
}

// endToEndCases are the guarantee tests that share one whole stack per write mode (and one in
// Connect mode): each posts events of its own ids only, and asserts only what became of those.
// A burst posts hundreds of events at once.
var endToEndCases = []endToEndCase{
	{"ClerkExamplesInOrder", false, (*stack).testExamples},
	{"SameDeliveryThreeTimes", false, (*stack).testDuplicateDelivery},
	{"OutOfOrder", false, (*stack).testOutOfOrder},
	{"PermanentFailureRecorded", false, (*stack).testPermanentFailureRecorded},
	{"UsernameSwapNewestFirst", false, (*stack).testUsernameSwapNewestFirst},
	{"DerivedUsernamesYield", false, (*stack).testDerivedUsernamesYield},
	{"RemovedUsernameReleased", false, (*stack).testRemovedUsernameReleased},
	{"OrganizationExamplesInOrder", false, (*stack).testOrgExamples},
	{"MalformedEventDataFailsAtOnce", false, (*stack).testMalformedEventData},
	{"BurstOf200SignUps", true, (*stack).testBurst},
	{"ThirtyUsersClaimingAtOnce", true, (*stack).testConcurrentClaims},
	{"FortyOrgsShuffledAndDuplicated", true, (*stack).testOrgBurst},
	{"FaultMixedLoad", true, (*stack).testMixedLoad},
}

// burstWait bounds how long a burst case waits for the database to hold what it posted. The
// bursts of both write modes and of Connect mode run at once, thousands of runs through three
// dev servers sharing the machine's cores with every other test: on a quiet 2-core machine they
// end within about a minute.
const burstWait = 6 * time.Minute

// TestEndToEnd runs the guarantee tests (endToEndCases) in each write mode, against one stack
// per mode: the service, the real dev server, a database. A call log between the dev server
// and the service finds each event's runs. The cases that wait on a few events at a time run
// first, all at once, then the bursts, all at once: behind thousands of runs of the bursts,
// the others' runs would wait minutes. (Run may be called from several goroutines: the cases
// run concurrently without holding -parallel's slots, which the other tests use.)
func TestEndToEnd(t *testing.T) {
	stacks(t)
	for _, mode := range writeModes {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			s := startStack(t, stackOptions{writeMode: mode, countCalls: true})
			for _, bursts := range []bool{false, true} {
				var wg sync.WaitGroup
				for _, c := range endToEndCases {
					if c.burst == bursts {
						wg.Go(func() { t.Run(c.name, func(t *testing.T) { c.run(s, t) }) })
					}
				}
				wg.Wait()
			}
		})
	}
}

// TestDevServerDown: with the dev server down, a webhook is answered 503 within
// WEBHOOK_FORWARD_TIMEOUT and nothing is written; re-sent once the dev server is back, as Svix
// does, it lands once. The test stops the dev server: its stack is its own.
func TestDevServerDown(t *testing.T) {
	stacks(t)
	eachWriteMode(t, func(t *testing.T, mode string) {
		startStack(t, stackOptions{writeMode: mode, countCalls: true}).testDevServerDown(t)
	})
}

func (s *stack) testExamples(t *testing.T) {
	dir := filepath.Join("..", "testdata", "clerk-examples") // the repository's copy of Clerk's examples
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("Clerk example %s: %v", name, err)
		}
		return b
	}
	str := func(p *string) string {
		if p == nil {
			return "<nil>"
		}
		return *p
	}
	steps := []struct {
		file, user string
		want       func(store.User, error) bool
	}{
		{"docs-user.created.json", "user_29w83sxmDNGwOuEthce5gg56FcC", func(u store.User, err error) bool {
			return err == nil && str(u.Email) == "example@example.org" && u.FullName == "Example Example" && u.UpdatedAt == 1654012591835 && u.Username == "example"
		}},
		{"dashboard-user.updated.json", "user_29w83sxmDNGwOuEthce5gg56FcC", func(u store.User, err error) bool {
			return err == nil && str(u.Email) == "example@example.org" && u.FullName == "Example" && u.UpdatedAt == 1654012824306 && u.Username == "example"
		}},
		{"dashboard-user.deleted.json", "user_29wBMCtzATuFJut8jO2VNTVekS4", isTombstone},
		{"openapi-user.created.json", "user_2g7np7Hrk0SN6kj5EDMLDaKNL0S", func(u store.User, err error) bool {
			return err == nil && u.Email == nil && u.FullName == "John Doe" && u.UpdatedAt == 1716883200000 && strings.HasPrefix(u.Username, "user_")
		}},
		{"openapi-user.updated.json", "user_2g7np7Hrk0SN6kj5EDMLDaKNL0S", func(u store.User, err error) bool {
			return err == nil && u.FullName == "John Doe Updated" && u.Username == "johndoe" && u.ProfilePicture == "https://img.clerk.com/yyyyy" && u.UpdatedAt == 1716883500000
		}},
		{"openapi-user.deleted.json", "user_2g7np7Hrk0SN6kj5EDMLDaKNL0S", isTombstone},
	}
	for i, st := range steps {
		s.mustPost(t, read(st.file), fmt.Sprintf("msg_example_%d_%d", i, time.Now().UnixNano()), http.StatusOK)
		s.waitUser(t, st.user, 30*time.Second, st.want)
	}
}

func (s *stack) testBurst(t *testing.T) {
	const n = 200
	var wg sync.WaitGroup
	codes := make([]int, n)
	errs := make([]error, n)
	sem := make(chan struct{}, 50)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			id := fmt.Sprintf("user_burst%03d", i)
			codes[i], errs[i] = s.post(clerkUserEvent("user.created", id, "Burst", fmt.Sprintf("burst@host%d.example", i), 1700000000000), "msg_burst_"+id)
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || codes[i] != http.StatusOK {
			t.Fatalf("POST sign-up %d = %d, %v; want 200", i, codes[i], errs[i])
		}
	}
	usernames := map[string]string{}
	for i := range n {
		id := fmt.Sprintf("user_burst%03d", i)
		u := s.waitUser(t, id, burstWait, func(u store.User, err error) bool { return err == nil })
		if !strings.HasPrefix(u.Username, "burst") {
			t.Errorf("user %s username = %q; want it to start with burst", id, u.Username)
		}
		if other, dup := usernames[u.Username]; dup {
			t.Errorf("username %q given to both %s and %s", u.Username, other, id)
		}
		usernames[u.Username] = id
	}
	if len(usernames) != n {
		t.Errorf("%d distinct usernames; want %d", len(usernames), n)
	}
}

func (s *stack) testDuplicateDelivery(t *testing.T) {
	body := clerkUserEvent("user.created", "user_dup1", "Dup", "dup@example.org", 1700000000001)
	for range 3 {
		s.mustPost(t, body, "msg_dup_1", http.StatusOK)
	}
	s.waitUser(t, "user_dup1", 30*time.Second, func(u store.User, err error) bool { return err == nil && u.FullName == "Dup Tester" })
	// The three posts were answered 200: Inngest holds the three events.
	s.waitRunsSettled(t, "clerk-msg_dup_1")
	time.Sleep(2 * time.Second) // a duplicate run, if any, would have started by now
	runs, err := s.runsOf("clerk-msg_dup_1")
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 1 {
		t.Errorf("dev server ran %d function runs for 3 posts of one delivery; want 1: %+v", len(runs), runs)
	}
	ids, err := s.store.LiveUserIDs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(" "+strings.Join(ids, " ")+" ", " user_dup1 "); n != 1 {
		t.Errorf("live users with id user_dup1 = %d; want 1", n)
	}
}

func (s *stack) testOutOfOrder(t *testing.T) {
	// The update arrives before its create: the update lands, the create changes nothing.
	s.mustPost(t, clerkUserEvent("user.updated", "user_ooo1", "Newer", "new@example.org", 1700000000200), "msg_ooo_upd", http.StatusOK)
	s.waitUser(t, "user_ooo1", 30*time.Second, func(u store.User, err error) bool { return err == nil && u.FullName == "Newer Tester" })
	s.mustPost(t, clerkUserEvent("user.created", "user_ooo1", "Older", "old@example.org", 1700000000100), "msg_ooo_create", http.StatusOK)
	if runs := s.waitRunsSettled(t, "clerk-msg_ooo_create"); len(runs) != 1 || runs[0].Output.Outcome != "skipped" {
		t.Errorf("runs for the late create = %+v; want one, with outcome skipped", runs)
	}
	u := s.waitUser(t, "user_ooo1", time.Second, func(u store.User, err error) bool { return err == nil })
	if u.FullName != "Newer Tester" || u.Email == nil || *u.Email != "new@example.org" || u.UpdatedAt != 1700000000200 {
		t.Errorf("after update then create: %+v; want the update's data (Newer Tester, new@example.org, 1700000000200)", u)
	}

	// A late update after the delete: the user stays deleted, without personal data.
	s.mustPost(t, clerkUserEvent("user.created", "user_ooo2", "Gone", "gone@example.org", 1700000000100), "msg_ooo2_create", http.StatusOK)
	s.waitUser(t, "user_ooo2", 30*time.Second, func(u store.User, err error) bool { return err == nil && u.FullName == "Gone Tester" })
	s.mustPost(t, clerkDeleteEvent("user_ooo2", 1700000000300), "msg_ooo2_delete", http.StatusOK)
	s.waitUser(t, "user_ooo2", 30*time.Second, isTombstone)
	s.mustPost(t, clerkUserEvent("user.updated", "user_ooo2", "Zombie", "zombie@example.org", 1700000000400), "msg_ooo2_late", http.StatusOK)
	if runs := s.waitRunsSettled(t, "clerk-msg_ooo2_late"); len(runs) != 1 || runs[0].Output.Outcome != "skipped" {
		t.Errorf("runs for the update after the delete = %+v; want one, with outcome skipped", runs)
	}
	s.waitUser(t, "user_ooo2", time.Second, isTombstone)
}

func (s *stack) testDevServerDown(t *testing.T) {
	s.stopDevServer()
	body := clerkUserEvent("user.created", "user_down1", "Down", "down@example.org", 1700000000001)
	start := time.Now()
	got, err := s.post(body, "msg_down_1")
	if elapsed := time.Since(start); err != nil || got != http.StatusServiceUnavailable || elapsed > 10*time.Second {
		t.Fatalf("POST with the dev server down = %d, %v after %v; want 503 well within 15s", got, err, elapsed)
	}
	if _, err := s.store.Get(context.Background(), "user_down1"); err != store.ErrNotFound {
		t.Fatalf("user_down1 after a 503: %v; want ErrNotFound (nothing written)", err)
	}

	s.startDevServer(t)
	s.mustPost(t, body, "msg_down_1", http.StatusOK) // what Svix does after a 503
	s.waitUser(t, "user_down1", 30*time.Second, func(u store.User, err error) bool { return err == nil && u.FullName == "Down Tester" })
	runs := s.waitRunsSettled(t, "clerk-msg_down_1")
	if len(runs) != 1 {
		t.Errorf("runs for the re-sent delivery = %+v; want exactly 1", runs)
	}
}
