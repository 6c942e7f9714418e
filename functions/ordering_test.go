package functions_test

import (
	"fmt"
	"strings"
	"testing"

	clerkevent "clerksync/clerk/event"
	"clerksync/store"
)

// orders are the 6 orders of three events, as indexes into them.
var orders = [][3]int{{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}}

// deliveries deliver an order of three events twice: each event twice in a row, or the whole
// order twice.
var deliveries = []struct {
	name string
	seq  func(o [3]int) []int
}{
	{"pairs", func(o [3]int) []int { return []int{o[0], o[0], o[1], o[1], o[2], o[2]} }},
	{"rounds", func(o [3]int) []int { return []int{o[0], o[1], o[2], o[0], o[1], o[2]} }},
}

// model is what the store should do with one user's events, to predict each call's outcome.
type model struct {
	exists, deleted bool
	updatedAt       int64
}

func (m *model) apply(e event) store.Outcome {
	return m.next(e.name == clerkevent.UserDeleted, e.user.UpdatedAt)
}

// next applies a deletion (isDelete) or an upsert of data updated at updatedAt to the model, and
// returns the outcome the store should report: the same rule for users, organizations and
// memberships.
func (m *model) next(isDelete bool, updatedAt int64) store.Outcome {
	switch {
	case isDelete && m.deleted:
		return store.AlreadyDeleted
	case isDelete:
		m.exists, m.deleted = true, true
		return store.Deleted
	case !m.exists:
		m.exists, m.updatedAt = true, updatedAt
		return store.Inserted
	case m.deleted || m.updatedAt >= updatedAt:
		return store.Skipped
	default:
		m.updatedAt = updatedAt
		return store.Updated
	}
}

// runOrders delivers the events for every order and delivery, each case to its own user id
// made by mkEvents, in both write modes, checks every call's outcome against the model and hands
// the final stored user to check. labels name the events in the subtest names.
func runOrders(t *testing.T, labels [3]string, mkEvents func(id string) [3]event, check func(t *testing.T, evs [3]event, got store.User)) {
	eachMode(t, func(t *testing.T, h *harness) {
		for _, o := range orders {
			for _, d := range deliveries {
				evs := mkEvents(fmt.Sprintf("user_o%d%d%d_%s", o[0], o[1], o[2], d.name))
				names := make([]string, 3)
				for i, j := range o {
					names[i] = labels[j]
				}
				t.Run(strings.Join(names, ",")+"/"+d.name, func(t *testing.T) {
					h := h.sub(t)
					var m model
					for _, i := range d.seq(o) {
						h.mustSend(evs[i], m.apply(evs[i]))
					}
					check(t, evs, h.get(evs[0].user.ID))
				})
			}
		}
	})
}

const t1, t2, t3 = int64(1_700_000_001_000), int64(1_700_000_002_000), int64(1_700_000_003_000)

// TestEventOrdersWithDelete: whatever the order and however often create, update and delete
// arrive, the user ends up deleted, without personal data.
func TestEventOrdersWithDelete(t *testing.T) {
	t.Parallel()
	runOrders(t, [3]string{"create", "update", "delete"}, func(id string) [3]event {
		return [3]event{
			created(clerkUser(id, "Ann", "Old", "ann.old@old.org", "https://img.example/1", t1)),
			updated(clerkUser(id, "Annie", "New", "annie@new.org", "https://img.example/2", t2)),
			deleted(id, t3),
		}
	}, func(t *testing.T, evs [3]event, got store.User) {
		checkTombstone(t, got, evs[2].ts)
	})
}

// TestEventOrdersWithoutDelete: whatever the order and however often a create and two updates
// arrive, the stored user is the newest data.
func TestEventOrdersWithoutDelete(t *testing.T) {
	t.Parallel()
	runOrders(t, [3]string{"create1", "update2", "update3"}, func(id string) [3]event {
		return [3]event{
			created(clerkUser(id, "Ann", "Old", "ann.old@old.org", "https://img.example/1", t1)),
			updated(clerkUser(id, "Annie", "Mid", "annie@mid.org", "https://img.example/2", t2)),
			updated(clerkUser(id, "Anna", "New", "anna@new.org", "https://img.example/3", t3)),
		}
	}, func(t *testing.T, evs [3]event, got store.User) {
		want := store.User{
			ID:             evs[2].user.ID,
			Email:          ptr("anna@new.org"),
			FullName:       "Anna New",
			ProfilePicture: "https://img.example/3",
			CreatedAt:      1_600_000_000_000,
			UpdatedAt:      t3,
		}
		// A derived username is kept from the first write, so which email's local part it
		// comes from depends on the order.
		expectUser{user: want, usernamePrefix: "ann"}.check(t, "Get("+want.ID+")", got)
	})
}
