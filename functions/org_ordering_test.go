package functions_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"clerksync/store"
)

// runOrgOrders delivers three events for every order and delivery (see orders, deliveries),
// each case to its own organization or membership id made by mkEvents from a prefix, in both
// write modes, checks every call's outcome against the model and hands the harness to check.
// labels name the events in the subtest names.
func runOrgOrders(t *testing.T, prefix string, labels [3]string, mkEvents func(id string) [3]orgEvent, check func(h *harness, evs [3]orgEvent)) {
	eachMode(t, func(t *testing.T, h *harness) {
		for _, o := range orders {
			for _, d := range deliveries {
				evs := mkEvents(fmt.Sprintf("%s_o%d%d%d_%s", prefix, o[0], o[1], o[2], d.name))
				names := make([]string, 3)
				for i, j := range o {
					names[i] = labels[j]
				}
				t.Run(strings.Join(names, ",")+"/"+d.name, func(t *testing.T) {
					h := h.sub(t)
					var m model
					for _, i := range d.seq(o) {
						h.mustSendOrg(evs[i], m.next(evs[i].isDelete(), evs[i].updatedAt()))
					}
					check(h, evs)
				})
			}
		}
	})
}

// TestOrgEventOrdersWithDelete: whatever the order and however often an organization's create,
// update and delete arrive, it ends up deleted; a late create or update never brings it back.
func TestOrgEventOrdersWithDelete(t *testing.T) {
	t.Parallel()
	runOrgOrders(t, "org", [3]string{"create", "update", "delete"}, func(id string) [3]orgEvent {
		return [3]orgEvent{
			orgCreated(clerkOrg(id, "Old", id+"-old", t1)),
			orgUpdated(clerkOrg(id, "New", id+"-new", t2)),
			orgDeleted(id, t3),
		}
	}, func(h *harness, evs [3]orgEvent) {
		checkOrgTombstone(h.t, h.getOrg(evs[0].id()), evs[2].ts)
	})
}

// TestOrgEventOrdersWithoutDelete: whatever the order and however often a create and two
// updates arrive, the stored organization is the newest data.
func TestOrgEventOrdersWithoutDelete(t *testing.T) {
	t.Parallel()
	runOrgOrders(t, "org", [3]string{"create1", "update2", "update3"}, func(id string) [3]orgEvent {
		return [3]orgEvent{
			orgCreated(clerkOrg(id, "One", id+"-1", t1)),
			orgUpdated(clerkOrg(id, "Two", id+"-2", t2)),
			orgUpdated(clerkOrg(id, "Three", id+"-3", t3)),
		}
	}, func(h *harness, evs [3]orgEvent) {
		id := evs[0].id()
		if got, want := h.getOrg(id), storedOrg(id, "Three", id+"-3", t3); got != want {
			h.t.Errorf("GetOrganization(%s) = %+v\nwant %+v", id, got, want)
		}
	})
}

// TestMembershipEventOrdersWithDelete: whatever the order and however often a membership's
// create, update and delete arrive, it ends up deleted, not live.
func TestMembershipEventOrdersWithDelete(t *testing.T) {
	t.Parallel()
	runOrgOrders(t, "orgmem", [3]string{"create", "update", "delete"}, func(id string) [3]orgEvent {
		m := clerkMember(id, "org_orders", "user_"+id, "org:member", t1)
		return [3]orgEvent{
			memCreated(m),
			memUpdated(clerkMember(id, "org_orders", "user_"+id, "org:admin", t2)),
			memDeleted(m, t3),
		}
	}, func(h *harness, evs [3]orgEvent) {
		id := evs[0].id()
		checkMembershipTombstone(h.t, h.getMembership(id), evs[2].ts)
		h.checkNotLive(id, "org_orders", "user_"+id)
	})
}

// TestMembershipEventOrdersWithoutDelete: whatever the order and however often a create and two
// role changes arrive, the stored membership is the newest, and the one live membership of its
// user in its organization.
func TestMembershipEventOrdersWithoutDelete(t *testing.T) {
	t.Parallel()
	runOrgOrders(t, "orgmem", [3]string{"create1", "update2", "update3"}, func(id string) [3]orgEvent {
		return [3]orgEvent{
			memCreated(clerkMember(id, "org_orders", "user_"+id, "org:member", t1)),
			memUpdated(clerkMember(id, "org_orders", "user_"+id, "org:admin", t2)),
			memUpdated(clerkMember(id, "org_orders", "user_"+id, "org:billing", t3)),
		}
	}, func(h *harness, evs [3]orgEvent) {
		id := evs[0].id()
		h.checkLive(storedMember(id, "org_orders", "user_"+id, "org:billing", t3))
	})
}

// TestDeletedOrganizationStaysDeleted: an organization deleted before the database saw it, or
// after, stays deleted whatever creates and updates arrive later, however new; its slug is free
// for another organization.
func TestDeletedOrganizationStaysDeleted(t *testing.T) {
	t.Parallel()
	eachMode(t, func(t *testing.T, h *harness) {
		h.mustSendOrg(orgDeleted("org_gone_first", t2), store.Deleted)
		h.mustSendOrg(orgCreated(clerkOrg("org_gone_first", "Late", "late", t1)), store.Skipped)
		h.mustSendOrg(orgUpdated(clerkOrg("org_gone_first", "Later", "later", t3)), store.Skipped)
		h.mustSendOrg(orgDeleted("org_gone_first", t3), store.AlreadyDeleted)
		checkOrgTombstone(t, h.getOrg("org_gone_first"), t2)

		h.mustSendOrg(orgCreated(clerkOrg("org_gone", "Gone", "acme", t1)), store.Inserted)
		h.mustSendOrg(orgDeleted("org_gone", t2), store.Deleted)
		h.mustSendOrg(orgUpdated(clerkOrg("org_gone", "Back", "acme", t3)), store.Skipped)
		checkOrgTombstone(t, h.getOrg("org_gone"), t2)
		// A live organization may take the deleted one's slug.
		h.mustSendOrg(orgCreated(clerkOrg("org_new", "New", "acme", t3)), store.Inserted)
		if got, want := h.getOrg("org_new"), storedOrg("org_new", "New", "acme", t3); got != want {
			t.Errorf("GetOrganization(org_new) = %+v\nwant %+v", got, want)
		}
	})
}

// TestMembershipAfterOrganizationDeleted: deleting an organization ends its memberships, and a
// membership event that arrives after the deletion (a create, a newer role change, one for a
// membership never seen, one for an organization the database never saw) leaves no live
// membership.
func TestMembershipAfterOrganizationDeleted(t *testing.T) {
	t.Parallel()
	eachMode(t, func(t *testing.T, h *harness) {
		h.mustSendOrg(orgCreated(clerkOrg("org_del", "Del", "del", t1)), store.Inserted)
		h.mustSendOrg(memCreated(clerkMember("orgmem_del_a", "org_del", "user_a", "org:admin", t1)), store.Inserted)
		h.mustSendOrg(memCreated(clerkMember("orgmem_del_b", "org_del", "user_b", "org:member", t1)), store.Inserted)
		h.mustSendOrg(orgCreated(clerkOrg("org_other", "Other", "other", t1)), store.Inserted)
		h.mustSendOrg(memCreated(clerkMember("orgmem_other_a", "org_other", "user_a", "org:member", t1)), store.Inserted)

		h.mustSendOrg(orgDeleted("org_del", t2), store.Deleted)
		h.checkNotLive("orgmem_del_a", "org_del", "user_a")
		h.checkNotLive("orgmem_del_b", "org_del", "user_b")

		// Late events for the deleted organization's memberships.
		h.mustSendOrg(memUpdated(clerkMember("orgmem_del_a", "org_del", "user_a", "org:member", t3)), "")
		h.mustSendOrg(memCreated(clerkMember("orgmem_del_b", "org_del", "user_b", "org:member", t1)), "")
		h.mustSendOrg(memCreated(clerkMember("orgmem_del_c", "org_del", "user_c", "org:member", t3)), "")
		h.checkNotLive("orgmem_del_a", "org_del", "user_a")
		h.checkNotLive("orgmem_del_b", "org_del", "user_b")
		h.checkNotLive("orgmem_del_c", "org_del", "user_c")

		// An organization deleted before the database saw it or its memberships.
		h.mustSendOrg(orgDeleted("org_unseen", t2), store.Deleted)
		h.mustSendOrg(memCreated(clerkMember("orgmem_unseen", "org_unseen", "user_a", "org:member", t1)), "")
		h.mustSendOrg(memUpdated(clerkMember("orgmem_unseen", "org_unseen", "user_a", "org:admin", t3)), "")
		h.checkNotLive("orgmem_unseen", "org_unseen", "user_a")

		// The other organization's membership of the same user is untouched.
		h.checkLive(storedMember("orgmem_other_a", "org_other", "user_a", "org:member", t1))
	})
}

// TestMembershipAfterUserDeleted: deleting a user ends their memberships, and a membership event
// of that user arriving after the deletion leaves no live membership; the organization's other
// members keep theirs.
func TestMembershipAfterUserDeleted(t *testing.T) {
	t.Parallel()
	eachMode(t, func(t *testing.T, h *harness) {
		h.mustSend(created(clerkUser("user_leaving", "Lea", "Ving", "lea@x.org", "", t1)), store.Inserted)
		h.mustSendOrg(orgCreated(clerkOrg("org_u1", "U1", "u1", t1)), store.Inserted)
		h.mustSendOrg(orgCreated(clerkOrg("org_u2", "U2", "u2", t1)), store.Inserted)
		h.mustSendOrg(memCreated(clerkMember("orgmem_leaving_1", "org_u1", "user_leaving", "org:admin", t1)), store.Inserted)
		h.mustSendOrg(memCreated(clerkMember("orgmem_staying_1", "org_u1", "user_staying", "org:member", t1)), store.Inserted)

		h.mustSend(deleted("user_leaving", t2), store.Deleted)
		h.checkNotLive("orgmem_leaving_1", "org_u1", "user_leaving")

		h.mustSendOrg(memUpdated(clerkMember("orgmem_leaving_1", "org_u1", "user_leaving", "org:member", t3)), "")
		h.mustSendOrg(memCreated(clerkMember("orgmem_leaving_2", "org_u2", "user_leaving", "org:member", t3)), "")
		h.checkNotLive("orgmem_leaving_1", "org_u1", "user_leaving")
		h.checkNotLive("orgmem_leaving_2", "org_u2", "user_leaving")

		// A user deleted before the database saw them.
		h.mustSend(deleted("user_unseen", t2), store.Deleted)
		h.mustSendOrg(memCreated(clerkMember("orgmem_unseen_user", "org_u1", "user_unseen", "org:member", t3)), "")
		h.checkNotLive("orgmem_unseen_user", "org_u1", "user_unseen")

		h.checkLive(storedMember("orgmem_staying_1", "org_u1", "user_staying", "org:member", t1))
		if got, want := h.getOrg("org_u1"), storedOrg("org_u1", "U1", "u1", t1); got != want {
			t.Errorf("GetOrganization(org_u1) = %+v; want it untouched: %+v", got, want)
		}
	})
}

// TestConcurrentMembershipAndDeletions: a membership's create runs at the same moment as the
// deletion of its organization or of its user (Inngest serialises a membership with its
// organization, but not with its user, and the tests call the functions without Inngest). No
// live membership may remain. Each case is repeated, since a race shows only in some runs.
func TestConcurrentMembershipAndDeletions(t *testing.T) {
	t.Parallel()
	const rounds = 20
	eachMode(t, func(t *testing.T, h *harness) {
		t.Run("organization deleted", func(t *testing.T) {
			h := h.sub(t)
			for r := range rounds {
				org, mem, user := fmt.Sprintf("org_race%02d", r), fmt.Sprintf("orgmem_race%02d", r), fmt.Sprintf("user_race%02d", r)
				h.mustSendOrg(orgCreated(clerkOrg(org, "Race", org, t1)), store.Inserted)
				errs := h.atOnce(
					func() error {
						_, err := h.sendOrg(memCreated(clerkMember(mem, org, user, "org:member", t1)))
						return err
					},
					func() error { _, err := h.sendOrg(orgDeleted(org, t2)); return err },
				)
				for _, err := range errs {
					if err != nil {
						t.Errorf("round %d: %v", r, err)
					}
				}
				h.checkNotLive(mem, org, user)
			}
		})
		t.Run("user deleted", func(t *testing.T) {
			h := h.sub(t)
			for r := range rounds {
				org, mem, user := fmt.Sprintf("org_urace%02d", r), fmt.Sprintf("orgmem_urace%02d", r), fmt.Sprintf("user_urace%02d", r)
				h.mustSend(created(clerkUser(user, "Race", "User", "", "", t1)), store.Inserted)
				errs := h.atOnce(
					func() error {
						_, err := h.sendOrg(memCreated(clerkMember(mem, org, user, "org:member", t1)))
						return err
					},
					func() error { _, err := h.send(deleted(user, t2)); return err },
				)
				for _, err := range errs {
					if err != nil {
						t.Errorf("round %d: %v", r, err)
					}
				}
				h.checkNotLive(mem, org, user)
			}
		})
	})
}

// atOnce runs the calls from one goroutine each, released together, and returns their errors.
func (h *harness) atOnce(calls ...func() error) []error {
	errs := make([]error, len(calls))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, call := range calls {
		wg.Go(func() {
			<-start
			errs[i] = call()
		})
	}
	close(start)
	wg.Wait()
	return errs
}
