package store_test

import (
	"cmp"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"clerksync/store"
)

// The memberships collection (UpsertMembership, DeleteMembership): the users' guarantees, one
// live membership per (organization, user), and the cascades of organization and user
// deletions. Every test runs in both write modes.

// mustMember writes m and fails the test unless the outcome is want ("" accepts any).
func mustMember(t *testing.T, s *store.Store, m store.Membership, want store.Outcome) {
	t.Helper()
	got, err := s.UpsertMembership(t.Context(), m)
	if err != nil || (want != "" && got != want) {
		t.Fatalf("UpsertMembership(%s %s/%s@%d) = %q, %v; want %q", m.ID, m.OrgID, m.UserID, m.UpdatedAt, got, err, want)
	}
}

// mustDeleteMember deletes the membership id and fails the test unless the outcome is want.
func mustDeleteMember(t *testing.T, s *store.Store, id string, at int64, want store.Outcome) {
	t.Helper()
	got, err := s.DeleteMembership(t.Context(), id, at)
	if err != nil || (want != "" && got != want) {
		t.Fatalf("DeleteMembership(%s, %d) = %q, %v; want %q", id, at, got, err, want)
	}
}

// mustDeleteUser deletes the user id and fails the test unless the outcome is want.
func mustDeleteUser(t *testing.T, s *store.Store, id string, at int64, want store.Outcome) {
	t.Helper()
	got, err := s.DeleteUser(t.Context(), id, at)
	if err != nil || (want != "" && got != want) {
		t.Fatalf("DeleteUser(%s, %d) = %q, %v; want %q", id, at, got, err, want)
	}
}

// getMember returns the stored membership id, failing the test when there is none.
func getMember(t *testing.T, s *store.Store, id string) store.Membership {
	t.Helper()
	m, err := s.GetMembership(t.Context(), id)
	if err != nil {
		t.Fatalf("GetMembership(%s) = %v", id, err)
	}
	return m
}

// liveIDs returns the ids of the live memberships of orgID and userID ("" for any).
func liveIDs(t *testing.T, s *store.Store, orgID, userID string) []string {
	t.Helper()
	ms, err := s.LiveMemberships(t.Context(), orgID, userID)
	if err != nil {
		t.Fatalf("LiveMemberships(%q, %q) = %v", orgID, userID, err)
	}
	ids := []string{}
	for _, m := range ms {
		if m.Deleted {
			t.Errorf("LiveMemberships(%q, %q) lists the tombstone %+v", orgID, userID, m)
		}
		ids = append(ids, m.ID)
	}
	return ids
}

// checkLive fails unless exactly ids are the live memberships of orgID and userID.
func checkLive(t *testing.T, s *store.Store, orgID, userID string, ids ...string) {
	t.Helper()
	if ids == nil {
		ids = []string{}
	}
	if got := liveIDs(t, s, orgID, userID); !slices.Equal(got, ids) {
		t.Errorf("live memberships of org %q, user %q = %v; want %v", orgID, userID, got, ids)
	}
}

// member returns a membership version.
func member(id, org, user, role string, createdAt, updatedAt int64) store.Membership {
	return store.Membership{ID: id, OrgID: org, UserID: user, Role: role, CreatedAt: createdAt, UpdatedAt: updatedAt}
}

// TestMembershipDeliveryOrders: a create, an update and (or not) a delete of one membership,
// each delivered twice, in every distinct order: each write's outcome is the guard's, and the
// membership ends as its newest event, or as a tombstone.
func TestMembershipDeliveryOrders(t *testing.T) {
	t.Parallel()
	eachMode(t, func(t *testing.T, s *store.Store) {
		mustOrg(t, s, store.Organization{ID: "org_1", Name: "One", Slug: "one", UpdatedAt: 1}, store.Inserted)
		n := 0
		for _, withDelete := range []bool{false, true} {
			counts := []int{2, 2}
			if withDelete {
				counts = append(counts, 2)
			}
			for _, order := range multisetOrders(counts) {
				n++
				id, user := fmt.Sprintf("orgmem_%03d", n), fmt.Sprintf("user_%03d", n)
				if n%2 == 0 { // half the users stored, half not yet: both are live
					mustUpsert(t, s, store.User{ID: user, Username: user, UpdatedAt: 1}, store.Inserted)
				}
				events := []store.Membership{
					member(id, "org_1", user, "org:admin", 100, 100),
					member(id, "org_1", user, "org:member", 100, 200),
				}
				const deletedAt = 300
				var g guardModel
				for _, e := range order {
					if e == 2 {
						mustDeleteMember(t, s, id, deletedAt, g.delete(deletedAt))
					} else {
						mustMember(t, s, events[e], g.upsert(events[e].UpdatedAt))
					}
				}
				if withDelete {
					checkTombstone(t, s, store.MembershipsCollection, id, deletedAt, deletedAt)
					checkLive(t, s, "org_1", user)
					continue
				}
				if got, want := getMember(t, s, id), events[1]; got != want {
					t.Errorf("order %v: %s = %+v; want the update %+v", order, id, got, want)
				}
				checkLive(t, s, "org_1", user, id)
			}
		}
	})
}

// TestMembershipInvalid: what UpsertMembership, DeleteMembership and GetMembership refuse.
func TestMembershipInvalid(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	for _, m := range []store.Membership{
		{OrgID: "org_1", UserID: "user_1", UpdatedAt: 1},
		{ID: "orgmem_1", UserID: "user_1", UpdatedAt: 1},
		{ID: "orgmem_1", OrgID: "org_1", UpdatedAt: 1},
		{ID: "orgmem_1", OrgID: "org_1", UserID: "user_1", UpdatedAt: 1, Deleted: true, DeletedAt: 1},
	} {
		if _, err := s.UpsertMembership(t.Context(), m); !errors.Is(err, store.ErrInvalidMembership) {
			t.Errorf("UpsertMembership(%+v) = %v; want ErrInvalidMembership", m, err)
		}
	}
	if _, err := s.DeleteMembership(t.Context(), "", 1); !errors.Is(err, store.ErrInvalidMembership) {
		t.Errorf("DeleteMembership(no id) = %v; want ErrInvalidMembership", err)
	}
	if _, err := s.GetMembership(t.Context(), "orgmem_1"); err != store.ErrNotFound {
		t.Errorf("GetMembership(orgmem_1) = %v; want ErrNotFound (nothing written)", err)
	}
}

// TestMembershipPairConflict: Clerk's history is M1 (org_1, user_1) created at 100, M1 deleted
// at 150, M2 (org_1, user_1) created at 200. Whatever order the events arrive in, one
// membership of the pair is live: the newer record, M2; M1 ends as a tombstone.
func TestMembershipPairConflict(t *testing.T) {
	t.Parallel()
	m1 := member("orgmem_1", "org_1", "user_1", "org:admin", 100, 100)
	m2 := member("orgmem_2", "org_1", "user_1", "org:member", 200, 200)

	t.Run("the newer first", func(t *testing.T) {
		eachMode(t, func(t *testing.T, s *store.Store) {
			mustMember(t, s, m2, store.Inserted)
			mustMember(t, s, m1, store.Skipped) // stored as a tombstone
			checkTombstone(t, s, store.MembershipsCollection, "orgmem_1", 200, 200)
			m1up := m1
			m1up.Role, m1up.UpdatedAt = "org:owner", 120
			mustMember(t, s, m1up, store.Skipped)
			mustDeleteMember(t, s, "orgmem_1", 150, store.AlreadyDeleted)
			checkLive(t, s, "org_1", "user_1", "orgmem_2")
			if got := getMember(t, s, "orgmem_2"); got != m2 {
				t.Errorf("orgmem_2 = %+v; want %+v", got, m2)
			}
		})
	})
	t.Run("the older first", func(t *testing.T) {
		eachMode(t, func(t *testing.T, s *store.Store) {
			mustMember(t, s, m1, store.Inserted)
			mustMember(t, s, m2, store.Inserted) // M1 is stale: tombstoned
			checkTombstone(t, s, store.MembershipsCollection, "orgmem_1", 200, 200)
			checkLive(t, s, "org_1", "user_1", "orgmem_2")
			mustDeleteMember(t, s, "orgmem_1", 150, store.AlreadyDeleted)
			checkLive(t, s, "org_1", "user_1", "orgmem_2")
		})
	})
	t.Run("every order, with duplicates", func(t *testing.T) {
		// 0: M1 created, 1: M1 deleted at 150, 2: M2 created; the creates delivered twice.
		// Each order on its own pair.
		eachMode(t, func(t *testing.T, s *store.Store) {
			for n, order := range multisetOrders([]int{2, 1, 2}) {
				org := fmt.Sprintf("org_%02d", n)
				a, b := m1, m2
				a.ID, a.OrgID, b.ID, b.OrgID = "orgmem_1_"+org, org, "orgmem_2_"+org, org
				for _, e := range order {
					switch e {
					case 0:
						mustMember(t, s, a, "")
					case 1:
						mustDeleteMember(t, s, a.ID, 150, "")
					case 2:
						mustMember(t, s, b, "")
					}
				}
				checkLive(t, s, org, "user_1", b.ID)
				if got := getMember(t, s, b.ID); got != b {
					t.Errorf("order %v: %s = %+v; want %+v", order, b.ID, got, b)
				}
				if got := getMember(t, s, a.ID); !got.Deleted {
					t.Errorf("order %v: %s = %+v; want a tombstone", order, a.ID, got)
				}
			}
		})
	})
	t.Run("equal updated_at: the later created_at stays live, in either order", func(t *testing.T) {
		old := member("orgmem_z", "org_1", "user_1", "org:admin", 90, 200)
		cur := member("orgmem_a", "org_1", "user_1", "org:member", 200, 200)
		for _, oldFirst := range []bool{true, false} {
			eachMode(t, func(t *testing.T, s *store.Store) {
				if oldFirst {
					mustMember(t, s, old, store.Inserted)
					mustMember(t, s, cur, store.Inserted)
				} else {
					mustMember(t, s, cur, store.Inserted)
					mustMember(t, s, old, store.Skipped)
				}
				checkLive(t, s, "org_1", "user_1", "orgmem_a")
			})
		}
	})
	t.Run("other pairs are independent", func(t *testing.T) {
		eachMode(t, func(t *testing.T, s *store.Store) {
			mustMember(t, s, m1, store.Inserted)
			mustMember(t, s, member("orgmem_3", "org_1", "user_2", "r", 300, 300), store.Inserted)
			mustMember(t, s, member("orgmem_4", "org_2", "user_1", "r", 300, 300), store.Inserted)
			checkLive(t, s, "", "", "orgmem_1", "orgmem_3", "orgmem_4")
			checkLive(t, s, "org_1", "", "orgmem_1", "orgmem_3")
			checkLive(t, s, "", "user_1", "orgmem_1", "orgmem_4")
		})
	})
}

// TestMembershipCascades: deleting an organization or a user tombstones its memberships and
// no other; a membership written after its organization or user was deleted (in any order
// with the delete, or after a delete that stopped before its cascade) leaves no live
// membership; an organization or user not stored yet does not hold a membership back.
func TestMembershipCascades(t *testing.T) {
	t.Parallel()
	// setup stores org_1, org_2, user_1, user_2 and their four memberships, live.
	setup := func(t *testing.T, s *store.Store) {
		for _, o := range []string{"org_1", "org_2"} {
			mustOrg(t, s, store.Organization{ID: o, Name: o, Slug: o, UpdatedAt: 10}, store.Inserted)
		}
		for _, u := range []string{"user_1", "user_2"} {
			mustUpsert(t, s, store.User{ID: u, Username: u, UpdatedAt: 10}, store.Inserted)
		}
		for _, o := range []string{"1", "2"} {
			for _, u := range []string{"1", "2"} {
				mustMember(t, s, member("orgmem_"+o+u, "org_"+o, "user_"+u, "r", 20, 20), store.Inserted)
			}
		}
	}
	tests := []struct {
		name string
		run  func(t *testing.T, s *store.Store)
		// ended are the memberships the run tombstones, at deletedAt; live the rest.
		ended     []string
		deletedAt int64
		live      []string
	}{{
		name:  "an organization's deletion",
		run:   func(t *testing.T, s *store.Store) { mustDeleteOrg(t, s, "org_1", 500, store.Deleted) },
		ended: []string{"orgmem_11", "orgmem_12"}, deletedAt: 500,
		live: []string{"orgmem_21", "orgmem_22"},
	}, {
		name:  "a user's deletion",
		run:   func(t *testing.T, s *store.Store) { mustDeleteUser(t, s, "user_1", 500, store.Deleted) },
		ended: []string{"orgmem_11", "orgmem_21"}, deletedAt: 500,
		live: []string{"orgmem_12", "orgmem_22"},
	}, {
		name: "both, replayed",
		run: func(t *testing.T, s *store.Store) {
			mustDeleteUser(t, s, "user_1", 500, store.Deleted)
			mustDeleteOrg(t, s, "org_1", 500, store.Deleted)
			mustDeleteOrg(t, s, "org_1", 600, store.AlreadyDeleted)
			mustDeleteUser(t, s, "user_1", 600, store.AlreadyDeleted)
		},
		ended: []string{"orgmem_11", "orgmem_12", "orgmem_21"}, deletedAt: 500,
		live: []string{"orgmem_22"},
	}, {
		name: "late updates of the ended memberships",
		run: func(t *testing.T, s *store.Store) {
			mustDeleteOrg(t, s, "org_1", 500, store.Deleted)
			mustMember(t, s, member("orgmem_11", "org_1", "user_1", "r2", 20, 400), store.Skipped)
			mustMember(t, s, member("orgmem_12", "org_1", "user_2", "r2", 20, 900), store.Skipped)
		},
		ended: []string{"orgmem_11", "orgmem_12"}, deletedAt: 500,
		live: []string{"orgmem_21", "orgmem_22"},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			eachMode(t, func(t *testing.T, s *store.Store) {
				setup(t, s)
				tc.run(t, s)
				for _, id := range tc.ended {
					checkTombstone(t, s, store.MembershipsCollection, id, tc.deletedAt, tc.deletedAt)
				}
				checkLive(t, s, "", "", tc.live...)
				// The other documents are as they were.
				if o := getOrg(t, s, "org_2"); o.Deleted || o.Slug != "org_2" {
					t.Errorf("org_2 = %+v; want it live, untouched", o)
				}
				if u, err := s.Get(t.Context(), "user_2"); err != nil || u.Deleted || u.Username != "user_2" {
					t.Errorf("user_2 = %+v, %v; want it live, untouched", u, err)
				}
			})
		})
	}
}

// TestLateMembership: a membership created or updated after its organization or its user was
// deleted is stored as a tombstone (deleted at that deletion), whether the organization or
// user was ever stored live, and whether the delete completed its cascade or stopped right
// after writing its tombstone (a crash: the tombstone is inserted as it is). An organization
// and a user not stored yet are no reason to wait.
func TestLateMembership(t *testing.T) {
	t.Parallel()
	tombstone := func(id string, at int64) bson.D {
		return bson.D{{Key: "_id", Value: id}, {Key: "deleted", Value: true}, {Key: "deleted_at", Value: at}, {Key: "updated_at", Value: at}}
	}
	tests := []struct {
		name string
		// before runs before the membership's events.
		before func(t *testing.T, s *store.Store)
		// deletedAt is when the membership must end; 0: it stays live.
		deletedAt int64
	}{
		{"organization deleted after being stored", func(t *testing.T, s *store.Store) {
			mustOrg(t, s, store.Organization{ID: "org_1", Name: "o", UpdatedAt: 10}, store.Inserted)
			mustDeleteOrg(t, s, "org_1", 300, store.Deleted)
		}, 300},
		{"organization deleted, never stored", func(t *testing.T, s *store.Store) {
			mustDeleteOrg(t, s, "org_1", 300, store.Deleted)
		}, 300},
		{"user deleted after being stored", func(t *testing.T, s *store.Store) {
			mustUpsert(t, s, store.User{ID: "user_1", Username: "u", UpdatedAt: 10}, store.Inserted)
			mustDeleteUser(t, s, "user_1", 300, store.Deleted)
		}, 300},
		{"user deleted, never stored", func(t *testing.T, s *store.Store) {
			mustDeleteUser(t, s, "user_1", 300, store.Deleted)
		}, 300},
		{"both deleted: the earlier deletion", func(t *testing.T, s *store.Store) {
			mustDeleteUser(t, s, "user_1", 350, store.Deleted)
			mustDeleteOrg(t, s, "org_1", 300, store.Deleted)
		}, 300},
		{"organization and user live", func(t *testing.T, s *store.Store) {
			mustOrg(t, s, store.Organization{ID: "org_1", Name: "o", UpdatedAt: 10}, store.Inserted)
			mustUpsert(t, s, store.User{ID: "user_1", Username: "u", UpdatedAt: 10}, store.Inserted)
		}, 0},
		{"organization and user not stored yet", func(t *testing.T, s *store.Store) {}, 0},
	}
	m100 := member("orgmem_1", "org_1", "user_1", "org:admin", 100, 100)
	m200 := member("orgmem_1", "org_1", "user_1", "org:member", 100, 200)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, order := range [][]store.Membership{{m100, m200}, {m200, m100}, {m100}} {
				eachMode(t, func(t *testing.T, s *store.Store) {
					tc.before(t, s)
					for _, m := range order {
						mustMember(t, s, m, "")
					}
					if tc.deletedAt == 0 {
						want := slices.MaxFunc(order, func(a, b store.Membership) int { return cmp.Compare(a.UpdatedAt, b.UpdatedAt) })
						if got := getMember(t, s, "orgmem_1"); got != want {
							t.Errorf("orgmem_1 = %+v; want %+v", got, want)
						}
						checkLive(t, s, "org_1", "user_1", "orgmem_1")
						return
					}
					checkTombstone(t, s, store.MembershipsCollection, "orgmem_1", tc.deletedAt, tc.deletedAt)
					checkLive(t, s, "", "")
				})
			}
		})
	}

	// A delete that wrote its tombstone but stopped before its cascade (the tombstone is
	// inserted as it is, after the membership was written live).
	for _, party := range []string{store.OrganizationsCollection, store.Collection} {
		id := map[string]string{store.OrganizationsCollection: "org_1", store.Collection: "user_1"}[party]
		t.Run("a "+party+" delete stopped before its cascade, then", func(t *testing.T) {
			followUps := []struct {
				name string
				run  func(t *testing.T, s *store.Store)
			}{
				{"a newer update of the membership", func(t *testing.T, s *store.Store) { mustMember(t, s, m200, store.Skipped) }},
				{"a replay of the membership's write", func(t *testing.T, s *store.Store) { mustMember(t, s, m100, store.Skipped) }},
				{"a replay of the delete", func(t *testing.T, s *store.Store) {
					var err error
					var out store.Outcome
					if party == store.Collection {
						out, err = s.DeleteUser(t.Context(), id, 999)
					} else {
						out, err = s.DeleteOrganization(t.Context(), id, 999)
					}
					if err != nil || out != store.AlreadyDeleted {
						t.Fatalf("delete %s again = %q, %v; want already_deleted", id, out, err)
					}
				}},
			}
			for _, f := range followUps {
				t.Run(f.name, func(t *testing.T) {
					eachMode(t, func(t *testing.T, s *store.Store) {
						mustMember(t, s, m100, store.Inserted)
						if err := store.InsertRawDoc(t.Context(), s, party, tombstone(id, 300)); err != nil {
							t.Fatal(err)
						}
						checkLive(t, s, "", "", "orgmem_1") // the stopped cascade
						f.run(t, s)
						checkTombstone(t, s, store.MembershipsCollection, "orgmem_1", 300, max(300, m100.UpdatedAt))
						checkLive(t, s, "", "")
					})
				})
			}
		})
	}
}

// TestDeleteBetweenCheckAndWrite: the interleaving that the check after writing is for. A
// membership's create reads its organization and user (both live), then the organization (or
// the user) is deleted, cascade included, before the membership is written: the membership
// must still end as a tombstone.
func TestDeleteBetweenCheckAndWrite(t *testing.T) {
	t.Parallel()
	for _, party := range []string{"organization", "user"} {
		t.Run(party, func(t *testing.T) {
			eachMode(t, func(t *testing.T, s *store.Store) {
				ctx := t.Context()
				mustOrg(t, s, store.Organization{ID: "org_1", Name: "o", UpdatedAt: 10}, store.Inserted)
				mustUpsert(t, s, store.User{ID: "user_1", Username: "u", UpdatedAt: 10}, store.Inserted)
				m := member("orgmem_1", "org_1", "user_1", "org:member", 100, 100)
				// The hook runs holding the membership's lock: the deletion's lock must differ.
				if store.LockStripe(s, m.ID) == store.LockStripe(s, m.OrgID) || store.LockStripe(s, m.ID) == store.LockStripe(s, m.UserID) {
					t.Fatal("the test's ids share a lock stripe: pick others")
				}
				var once sync.Once
				store.SetBeforeMembershipWrite(s, func(store.Membership) {
					once.Do(func() {
						var err error
						if party == "user" {
							_, err = s.DeleteUser(ctx, m.UserID, 500)
						} else {
							_, err = s.DeleteOrganization(ctx, m.OrgID, 500)
						}
						if err != nil {
							t.Errorf("delete %s = %v", party, err)
						}
					})
				})
				mustMember(t, s, m, store.Skipped)
				checkTombstone(t, s, store.MembershipsCollection, m.ID, 500, 500)
				checkLive(t, s, "", "")
			})
		})
	}
}

// TestConcurrentDeleteAndMembership: an organization's (or a user's) deletion and the
// creation and update of many of its memberships, all at the same moment, many times: every
// write succeeds, and no membership of the deleted organization (or user) is left live.
func TestConcurrentDeleteAndMembership(t *testing.T) {
	t.Parallel()
	for _, party := range []string{"organization", "user"} {
		t.Run(party, func(t *testing.T) {
			eachMode(t, func(t *testing.T, s *store.Store) {
				ctx := t.Context()
				const rounds, members = 10, 16
				for r := range rounds {
					orgID, userID := fmt.Sprintf("org_r%02d", r), fmt.Sprintf("user_r%02d", r)
					if _, err := s.UpsertOrganization(ctx, store.Organization{ID: orgID, Name: "o", UpdatedAt: 1}); err != nil {
						t.Fatal(err)
					}
					if _, err := s.UpsertUser(ctx, store.User{ID: userID, Username: userID, UpdatedAt: 1}); err != nil {
						t.Fatal(err)
					}
					// The memberships of the deleted party: with other users (organization) or
					// other organizations (user), each created and updated.
					ms := make([]store.Membership, 0, 2*members)
					for k := range members {
						m := member(fmt.Sprintf("orgmem_r%02d_%d", r, k), orgID, fmt.Sprintf("user_k%d", k), "org:member", 100, 100)
						if party == "user" {
							m.OrgID, m.UserID = fmt.Sprintf("org_k%d", k), userID
						}
						up := m
						up.Role, up.UpdatedAt = "org:admin", 200
						ms = append(ms, m, up)
					}
					start := make(chan struct{})
					errs := make([]error, len(ms)+1)
					var wg sync.WaitGroup
					wg.Go(func() {
						<-start
						if party == "user" {
							_, errs[len(ms)] = s.DeleteUser(ctx, userID, 1000)
						} else {
							_, errs[len(ms)] = s.DeleteOrganization(ctx, orgID, 1000)
						}
					})
					for i, m := range ms {
						wg.Go(func() {
							<-start
							_, errs[i] = s.UpsertMembership(ctx, m)
						})
					}
					close(start)
					wg.Wait()
					for i, err := range errs {
						if err != nil {
							t.Errorf("round %d: write %d = %v", r, i, err)
						}
					}
					if party == "user" {
						checkLive(t, s, "", userID)
					} else {
						checkLive(t, s, orgID, "")
					}
				}
			})
		})
	}
}

// clerkOrgHistory is a random Clerk history of orgs organizations and up to members
// memberships among users users, at strictly increasing times, as Clerk allows it: slugs from
// a small pool, unique among live organizations at every instant; at most one live membership
// per (organization, user) at every instant, so pairs are reused after a deletion; memberships
// created only in live organizations for live users; a deleted organization or user ending its
// memberships (with their deleted events or without). It returns every event, and Clerk's
// final state.
type clerkOrgHistory struct {
	events []orgEvent
	// orgs and members are the last version of each organization and membership ever
	// created; deleted says which ended (deleted, or their organization or user deleted).
	orgs    map[string]store.Organization
	members map[string]store.Membership
	deleted map[string]bool
}

// orgEvent is one event: one of the writes, by kind.
type orgEvent struct {
	kind string // "org", "org-", "mem", "mem-", "user", "user-"
	org  store.Organization
	mem  store.Membership
	user store.User
	id   string
	at   int64
}

// apply delivers e to s.
func (e orgEvent) apply(t *testing.T, s *store.Store) error {
	var err error
	switch e.kind {
	case "org":
		_, err = s.UpsertOrganization(t.Context(), e.org)
	case "org-":
		_, err = s.DeleteOrganization(t.Context(), e.id, e.at)
	case "mem":
		_, err = s.UpsertMembership(t.Context(), e.mem)
	case "mem-":
		_, err = s.DeleteMembership(t.Context(), e.id, e.at)
	case "user":
		_, err = s.UpsertUser(t.Context(), e.user)
	case "user-":
		_, err = s.DeleteUser(t.Context(), e.id, e.at)
	}
	if err != nil {
		return fmt.Errorf("%s %s%s%s: %w", e.kind, e.id, e.org.ID, e.mem.ID, err)
	}
	return nil
}

func newClerkOrgHistory(rng *rand.Rand, orgs, members, users int) clerkOrgHistory {
	h := clerkOrgHistory{orgs: map[string]store.Organization{}, members: map[string]store.Membership{}, deleted: map[string]bool{}}
	at := int64(1000)
	tick := func() int64 { at += 1 + rng.Int64N(3); return at }
	pool := make([]string, orgs+4)
	for i := range pool {
		pool[i] = fmt.Sprintf("slug-%d", i)
	}
	slugHolder := map[string]string{}
	freeSlug := func() string {
		var f []string
		for _, p := range pool {
			if slugHolder[p] == "" {
				f = append(f, p)
			}
		}
		return f[rng.IntN(len(f))]
	}
	pairHolder := map[[2]string]string{}
	var liveOrgs, liveUsers, liveMembers []string
	for i := range users {
		id := fmt.Sprintf("user_%02d", i)
		liveUsers = append(liveUsers, id)
		h.events = append(h.events, orgEvent{kind: "user", user: store.User{ID: id, Username: id, UpdatedAt: tick()}})
	}
	endMember := func(id string, withEvent bool) {
		m := h.members[id]
		h.deleted[id] = true
		delete(pairHolder, [2]string{m.OrgID, m.UserID})
		liveMembers = slices.DeleteFunc(liveMembers, func(x string) bool { return x == id })
		if withEvent {
			h.events = append(h.events, orgEvent{kind: "mem-", id: id, at: tick()})
		}
	}
	endMembersOf := func(field func(store.Membership) string, id string) {
		for _, mid := range slices.Clone(liveMembers) {
			if field(h.members[mid]) == id {
				endMember(mid, rng.IntN(2) == 0)
			}
		}
	}
	createdOrgs, createdMembers, deletedOrgs, deletedUsers := 0, 0, 0, 0
	for createdOrgs < orgs || createdMembers < members {
		switch r := rng.IntN(20); {
		case r < 3 && createdOrgs < orgs:
			id := fmt.Sprintf("org_%02d", createdOrgs)
			createdOrgs++
			now := tick()
			o := store.Organization{ID: id, Name: "Org " + id, Slug: freeSlug(), ImageURL: "https://img/" + id, CreatedBy: liveUsers[0], CreatedAt: now, UpdatedAt: now}
			slugHolder[o.Slug] = id
			h.orgs[id] = o
			liveOrgs = append(liveOrgs, id)
			h.events = append(h.events, orgEvent{kind: "org", org: o})
		case r < 6 && len(liveOrgs) > 0:
			o := h.orgs[liveOrgs[rng.IntN(len(liveOrgs))]]
			o.Name, o.UpdatedAt = fmt.Sprintf("Org %s v%d", o.ID, at), tick()
			if rng.IntN(2) == 0 { // a new slug
				delete(slugHolder, o.Slug)
				o.Slug = freeSlug()
				slugHolder[o.Slug] = o.ID
			}
			h.orgs[o.ID] = o
			h.events = append(h.events, orgEvent{kind: "org", org: o})
		case r < 7 && len(liveOrgs) > 2 && deletedOrgs < orgs/3:
			id := liveOrgs[rng.IntN(len(liveOrgs))]
			deletedOrgs++
			h.deleted[id] = true
			delete(slugHolder, h.orgs[id].Slug)
			liveOrgs = slices.DeleteFunc(liveOrgs, func(x string) bool { return x == id })
			h.events = append(h.events, orgEvent{kind: "org-", id: id, at: tick()})
			endMembersOf(func(m store.Membership) string { return m.OrgID }, id)
		case r < 8 && len(liveUsers) > 3 && deletedUsers < users/5:
			id := liveUsers[1+rng.IntN(len(liveUsers)-1)]
			deletedUsers++
			h.deleted[id] = true
			liveUsers = slices.DeleteFunc(liveUsers, func(x string) bool { return x == id })
			h.events = append(h.events, orgEvent{kind: "user-", id: id, at: tick()})
			endMembersOf(func(m store.Membership) string { return m.UserID }, id)
		case r < 15 && createdMembers < members && len(liveOrgs) > 0:
			org, user := liveOrgs[rng.IntN(len(liveOrgs))], liveUsers[rng.IntN(len(liveUsers))]
			pair := [2]string{org, user}
			if pairHolder[pair] != "" {
				continue
			}
			id := fmt.Sprintf("orgmem_%02d", createdMembers)
			createdMembers++
			now := tick()
			m := member(id, org, user, "org:member", now, now)
			pairHolder[pair] = id
			h.members[id] = m
			liveMembers = append(liveMembers, id)
			h.events = append(h.events, orgEvent{kind: "mem", mem: m})
		case r < 17 && len(liveMembers) > 0:
			m := h.members[liveMembers[rng.IntN(len(liveMembers))]]
			m.Role, m.UpdatedAt = fmt.Sprintf("org:role%d", rng.IntN(3)), tick()
			h.members[m.ID] = m
			h.events = append(h.events, orgEvent{kind: "mem", mem: m})
		case len(liveMembers) > 0:
			endMember(liveMembers[rng.IntN(len(liveMembers))], true)
		}
	}
	return h
}

// check fails unless s holds the history's final state: each live organization and membership
// as its last version, every other one a tombstone, and nothing else live.
func (h clerkOrgHistory) check(t *testing.T, s *store.Store) {
	t.Helper()
	var liveOrgs, liveMembers []string
	for _, id := range slices.Sorted(mapsKeys(h.orgs)) {
		got := getOrg(t, s, id)
		switch {
		case h.deleted[id]:
			if !got.Deleted || got.Name != "" || got.Slug != "" {
				t.Errorf("%s = %+v; want a tombstone", id, got)
			}
		case got != h.orgs[id]:
			t.Errorf("%s = %+v; want %+v", id, got, h.orgs[id])
		default:
			liveOrgs = append(liveOrgs, id)
		}
	}
	for _, id := range slices.Sorted(mapsKeys(h.members)) {
		got, m := getMember(t, s, id), h.members[id]
		switch {
		case h.deleted[id] || h.deleted[m.OrgID] || h.deleted[m.UserID]:
			if !got.Deleted || got.OrgID != "" {
				t.Errorf("%s (%s/%s) = %+v; want a tombstone", id, m.OrgID, m.UserID, got)
			}
		case got != m:
			t.Errorf("%s = %+v; want %+v", id, got, m)
		default:
			liveMembers = append(liveMembers, id)
		}
	}
	if ids, err := s.LiveOrganizationIDs(t.Context()); err != nil || !slices.Equal(ids, liveOrgs) {
		t.Errorf("LiveOrganizationIDs = %v, %v; want %v", ids, err, liveOrgs)
	}
	checkLive(t, s, "", "", liveMembers...)
}

func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// deliveries returns the history's events shuffled, each delivered once or twice.
func (h clerkOrgHistory) deliveries(rng *rand.Rand) []orgEvent {
	var out []orgEvent
	for _, e := range h.events {
		out = append(out, e)
		if rng.IntN(2) == 0 {
			out = append(out, e)
		}
	}
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// TestRandomOrgHistory: random Clerk histories of 10 organizations and 50 memberships among 15
// users, their events shuffled and duplicated, delivered one after another: the collections
// end as Clerk is, whatever the order.
func TestRandomOrgHistory(t *testing.T) {
	t.Parallel()
	for seed := range uint64(3) {
		t.Run(fmt.Sprintf("seed %d", seed), func(t *testing.T) {
			eachMode(t, func(t *testing.T, s *store.Store) {
				rng := rand.New(rand.NewPCG(seed, 14))
				h := newClerkOrgHistory(rng, 10, 50, 15)
				events := h.deliveries(rng)
				if seed == 0 {
					slices.Reverse(events) // newest first, near enough
				}
				for _, e := range events {
					if err := e.apply(t, s); err != nil {
						t.Fatal(err)
					}
				}
				h.check(t, s)
			})
		})
	}
}

// TestConcurrentOrgHistory: the same histories, every delivery at once from its own goroutine:
// no write fails or deadlocks, and the collections end as Clerk is.
func TestConcurrentOrgHistory(t *testing.T) {
	t.Parallel()
	for seed := range uint64(3) {
		t.Run(fmt.Sprintf("seed %d", seed), func(t *testing.T) {
			eachMode(t, func(t *testing.T, s *store.Store) {
				rng := rand.New(rand.NewPCG(seed, 41))
				h := newClerkOrgHistory(rng, 10, 50, 15)
				events := h.deliveries(rng)
				errs := make([]error, len(events))
				start := make(chan struct{})
				var wg sync.WaitGroup
				for i, e := range events {
					wg.Go(func() {
						<-start
						errs[i] = e.apply(t, s)
					})
				}
				done := make(chan struct{})
				go func() { wg.Wait(); close(done) }()
				close(start)
				select {
				case <-done:
				case <-time.After(2 * time.Minute):
					t.Fatal("writes still running after 2 minutes: deadlocked?")
				}
				for _, err := range errs {
					if err != nil {
						t.Error(err)
					}
				}
				h.check(t, s)
			})
		})
	}
}
