package functions_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"clerksync/store"
)

// sendAtOnce sends the events from one goroutine each, released together, and returns their
// outcomes and errors.
func (h *harness) sendAtOnce(evs []event) ([]store.Outcome, []error) {
	outcomes := make([]store.Outcome, len(evs))
	errs := make([]error, len(evs))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, e := range evs {
		wg.Go(func() {
			<-start
			outcomes[i], errs[i] = h.send(e)
		})
	}
	close(start)
	wg.Wait()
	return outcomes, errs
}

// TestConcurrentSignups: users signing up at the same moment with the same email local part
// and no Clerk username all get distinct usernames.
func TestConcurrentSignups(t *testing.T) {
	t.Parallel()
	eachMode(t, func(t *testing.T, h *harness) {
		const n = 20
		evs := make([]event, n)
		for i := range evs {
			evs[i] = created(clerkUser(fmt.Sprintf("user_signup%02d", i), "Jane", "Doe", fmt.Sprintf("jane@d%02d.org", i), "", t1))
		}
		outcomes, errs := h.sendAtOnce(evs)

		owner := map[string]string{}
		for i, e := range evs {
			id := e.user.ID
			if errs[i] != nil || outcomes[i] != store.Inserted {
				t.Errorf("%s = %q, %v; want inserted", e, outcomes[i], errs[i])
				continue
			}
			got := h.get(id).Username
			if !strings.HasPrefix(got, "jane") {
				t.Errorf("Get(%s) username = %q; want one starting with \"jane\"", id, got)
			}
			if other, taken := owner[got]; taken {
				t.Errorf("username %q given to both %s and %s", got, other, id)
			}
			owner[got] = id
		}
		if len(owner) != n {
			t.Errorf("%d distinct usernames for %d users: %v", len(owner), n, owner)
		}
		t.Logf("usernames: %v", owner)
	})
}

// eventFor makes an event for the given user id.
type eventFor func(id string) event

// The versions of a user that the concurrent cases send.
func createT1(id string) event {
	return created(clerkUser(id, "Ann", "Old", id+"@old.org", "https://img.example/1", t1))
}

func updateT2(id string) event {
	return updated(clerkUser(id, "Annie", "Mid", id+"@mid.org", "https://img.example/2", t2))
}

func updateT3(id string) event {
	return updated(clerkUser(id, "Anna", "New", id+"@new.org", "https://img.example/3", t3))
}

func deleteT3(id string) event { return deleted(id, t3) }

// TestConcurrentEventsForOneUser: Inngest runs the three functions concurrently, so events for
// the same user can be processed at the same moment. The guarantees must hold then too. Each
// case is repeated for many users, since a race shows only in some runs. (The existing-user
// cases caught FerretDB applying a filtered update as read-then-write; the store now
// serialises writes per user.)
func TestConcurrentEventsForOneUser(t *testing.T) {
	t.Parallel()
	const rounds = 40
	live := func(full string, updatedAt int64) func(store.User) bool {
		return func(u store.User) bool { return !u.Deleted && u.FullName == full && u.UpdatedAt == updatedAt }
	}
	tombstone := func(u store.User) bool {
		return u.Deleted && u.Email == nil && u.FullName == "" && u.Username == "" && u.ProfilePicture == ""
	}
	tests := []struct {
		name   string
		before []eventFor // sent one after the other first
		atOnce []eventFor // then sent concurrently
		ok     func(store.User) bool
		want   string
	}{
		{"new user: create and update", nil, []eventFor{createT1, updateT2}, live("Annie Mid", t2), "the update (t2)"},
		{"new user: create and delete", nil, []eventFor{createT1, deleteT3}, tombstone, "a tombstone"},
		{"new user: update and delete", nil, []eventFor{updateT2, deleteT3}, tombstone, "a tombstone"},
		{"existing user: update and delete", []eventFor{createT1}, []eventFor{updateT2, deleteT3}, tombstone, "a tombstone"},
		{"existing user: two updates", []eventFor{createT1}, []eventFor{updateT3, updateT2}, live("Anna New", t3), "the newest update (t3)"},
	}
	eachMode(t, func(t *testing.T, h *harness) {
		for ci, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				h := h.sub(t)
				bad := 0
				for r := range rounds {
					id := fmt.Sprintf("user_c%d_%02d", ci, r)
					for _, mk := range tc.before {
						h.mustSend(mk(id), "")
					}
					evs := make([]event, len(tc.atOnce))
					for i, mk := range tc.atOnce {
						evs[i] = mk(id)
					}
					_, errs := h.sendAtOnce(evs)
					for i, err := range errs {
						if err != nil {
							t.Errorf("%s = %v", evs[i], err)
						}
					}
					if got := h.get(id); !tc.ok(got) {
						if bad++; bad <= 3 {
							t.Errorf("Get(%s) = %s; want %s", id, show(got), tc.want)
						}
					}
				}
				if bad > 0 {
					t.Errorf("%d of %d users wrong", bad, rounds)
				}
			})
		}
	})
}
