package store_test

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"

	"clerksync/store"
)

// The organizations collection (UpsertOrganization, DeleteOrganization): the users' guarantees
// and the slug rule. Every test runs in both write modes.

// mustOrg writes o and fails the test unless the outcome is want ("" accepts any).
func mustOrg(t *testing.T, s *store.Store, o store.Organization, want store.Outcome) {
	t.Helper()
	got, err := s.UpsertOrganization(t.Context(), o)
	if err != nil || (want != "" && got != want) {
		t.Fatalf("UpsertOrganization(%s %q@%d) = %q, %v; want %q", o.ID, o.Slug, o.UpdatedAt, got, err, want)
	}
}

// mustDeleteOrg deletes the organization id and fails the test unless the outcome is want.
func mustDeleteOrg(t *testing.T, s *store.Store, id string, at int64, want store.Outcome) {
	t.Helper()
	got, err := s.DeleteOrganization(t.Context(), id, at)
	if err != nil || (want != "" && got != want) {
		t.Fatalf("DeleteOrganization(%s, %d) = %q, %v; want %q", id, at, got, err, want)
	}
}

// getOrg returns the stored organization id, failing the test when there is none.
func getOrg(t *testing.T, s *store.Store, id string) store.Organization {
	t.Helper()
	o, err := s.GetOrganization(t.Context(), id)
	if err != nil {
		t.Fatalf("GetOrganization(%s) = %v", id, err)
	}
	return o
}

// checkTombstone fails unless the document id of coll is a tombstone deleted at deletedAt with
// updated_at updatedAt, holding _id, deleted, deleted_at and updated_at and nothing else.
func checkTombstone(t *testing.T, s *store.Store, coll, id string, deletedAt, updatedAt int64) {
	t.Helper()
	raw, err := store.RawDoc(t.Context(), s, coll, id)
	if err != nil {
		t.Errorf("%s %s: %v; want a tombstone", coll, id, err)
		return
	}
	if got, want := slices.Sorted(maps.Keys(raw)), []string{"_id", "deleted", "deleted_at", "updated_at"}; !slices.Equal(got, want) {
		t.Errorf("tombstone %s %s has fields %q (%v); want only %q", coll, id, got, raw, want)
	}
	if raw["deleted"] != true || raw["deleted_at"] != deletedAt || raw["updated_at"] != updatedAt {
		t.Errorf("tombstone %s %s = %v; want deleted_at %d, updated_at %d", coll, id, raw, deletedAt, updatedAt)
	}
}

// multisetOrders returns every distinct order of the multiset holding counts[i] copies of
// item i.
func multisetOrders(counts []int) [][]int {
	total := 0
	for _, c := range counts {
		total += c
	}
	left := slices.Clone(counts)
	var out [][]int
	var walk func(prefix []int)
	walk = func(prefix []int) {
		if len(prefix) == total {
			out = append(out, slices.Clone(prefix))
			return
		}
		for i := range left {
			if left[i] > 0 {
				left[i]--
				walk(append(prefix, i))
				left[i]++
			}
		}
	}
	walk(nil)
	return out
}

// guardModel is what the users' guard promises of one document: the outcome of each write, and
// what is stored after them.
type guardModel struct {
	found, deleted bool
	updatedAt      int64
}

// upsert returns the outcome the guard promises for a write at updatedAt.
func (g *guardModel) upsert(updatedAt int64) store.Outcome {
	switch {
	case !g.found:
		g.found, g.updatedAt = true, updatedAt
		return store.Inserted
	case g.deleted || g.updatedAt >= updatedAt:
		return store.Skipped
	}
	g.updatedAt = updatedAt
	return store.Updated
}

// delete returns the outcome the guard promises for a delete at deletedAt.
func (g *guardModel) delete(deletedAt int64) store.Outcome {
	if g.deleted {
		return store.AlreadyDeleted
	}
	g.found, g.deleted = true, true
	g.updatedAt = max(g.updatedAt, deletedAt)
	return store.Deleted
}

// TestOrganizationDeliveryOrders: a create, an update and (or not) a delete of one
// organization, each delivered twice, in every distinct order: each write's outcome is the
// guard's (the newer updated_at wins, an update before its create lands, replays are
// skipped, a deletion is final), and the organization ends as its newest event, or as a
// tombstone.
func TestOrganizationDeliveryOrders(t *testing.T) {
	t.Parallel()
	eachMode(t, func(t *testing.T, s *store.Store) {
		n := 0
		for _, withDelete := range []bool{false, true} {
			counts := []int{2, 2}
			if withDelete {
				counts = append(counts, 2)
			}
			for _, order := range multisetOrders(counts) {
				n++
				id := fmt.Sprintf("org_%03d", n)
				events := []store.Organization{
					{ID: id, Name: "Acme", Slug: fmt.Sprintf("acme-%d", n), ImageURL: "https://img/1", CreatedBy: "user_1", CreatedAt: 100, UpdatedAt: 100},
					{ID: id, Name: "Acme Inc", Slug: fmt.Sprintf("acme-inc-%d", n), ImageURL: "https://img/2", CreatedBy: "user_1", CreatedAt: 100, UpdatedAt: 200},
				}
				const deletedAt = 300
				var g guardModel
				for _, e := range order {
					if e == 2 {
						mustDeleteOrg(t, s, id, deletedAt, g.delete(deletedAt))
					} else {
						mustOrg(t, s, events[e], g.upsert(events[e].UpdatedAt))
					}
				}
				if withDelete {
					checkTombstone(t, s, store.OrganizationsCollection, id, deletedAt, deletedAt)
					continue
				}
				if got, want := getOrg(t, s, id), events[1]; got != want {
					t.Errorf("order %v: %s = %+v; want the update %+v", order, id, got, want)
				}
			}
		}
	})
}

// TestOrganizationTombstone: a delete keeps only the tombstone's fields, updated_at being the
// later of the deletion and the stored updated_at, frees the slug, and keeps the first
// deletion time on a replay; an organization never seen gets a tombstone too; bad input is
// ErrInvalidOrganization.
func TestOrganizationTombstone(t *testing.T) {
	t.Parallel()
	eachMode(t, func(t *testing.T, s *store.Store) {
		mustOrg(t, s, store.Organization{ID: "org_a", Name: "A", Slug: "x", UpdatedAt: 500}, store.Inserted)
		mustDeleteOrg(t, s, "org_a", 400, store.Deleted) // an older deletion time: updated_at stays 500
		checkTombstone(t, s, store.OrganizationsCollection, "org_a", 400, 500)
		mustDeleteOrg(t, s, "org_a", 900, store.AlreadyDeleted)
		checkTombstone(t, s, store.OrganizationsCollection, "org_a", 400, 500)
		mustOrg(t, s, store.Organization{ID: "org_a", Name: "A", Slug: "x", UpdatedAt: 999}, store.Skipped)
		checkTombstone(t, s, store.OrganizationsCollection, "org_a", 400, 500)
		// The slug is free, even for an older record.
		mustOrg(t, s, store.Organization{ID: "org_b", Name: "B", Slug: "x", UpdatedAt: 50}, store.Inserted)
		if b := getOrg(t, s, "org_b"); b.Slug != "x" {
			t.Errorf("org_b slug = %q; want x, freed by org_a's deletion", b.Slug)
		}

		mustDeleteOrg(t, s, "org_never", 100, store.Deleted)
		checkTombstone(t, s, store.OrganizationsCollection, "org_never", 100, 100)
		mustOrg(t, s, store.Organization{ID: "org_never", Name: "Late", UpdatedAt: 50}, store.Skipped)

		if _, err := s.UpsertOrganization(t.Context(), store.Organization{Name: "no id"}); !errors.Is(err, store.ErrInvalidOrganization) {
			t.Errorf("UpsertOrganization(no id) = %v; want ErrInvalidOrganization", err)
		}
		if _, err := s.DeleteOrganization(t.Context(), "", 1); !errors.Is(err, store.ErrInvalidOrganization) {
			t.Errorf("DeleteOrganization(no id) = %v; want ErrInvalidOrganization", err)
		}
		if _, err := s.GetOrganization(t.Context(), "org_none"); err != store.ErrNotFound {
			t.Errorf("GetOrganization(org_none) = %v; want ErrNotFound", err)
		}
		ids, err := s.LiveOrganizationIDs(t.Context())
		if err != nil || !slices.Equal(ids, []string{"org_b"}) {
			t.Errorf("LiveOrganizationIDs = %v, %v; want [org_b]", ids, err)
		}
	})
}

// TestOrganizationSlugConflict: Clerk's history is A@100 "x", A@150 "y" (renamed away), B@200
// "x". Whatever order the events arrive in, the newer record holds "x", the older holder's
// slug is removed until its own newer event arrives, and a slug never blocks the rest of the
// write.
func TestOrganizationSlugConflict(t *testing.T) {
	t.Parallel()
	a100 := store.Organization{ID: "org_a", Name: "A1", Slug: "x", ImageURL: "a", CreatedBy: "user_1", CreatedAt: 10, UpdatedAt: 100}
	a150 := store.Organization{ID: "org_a", Name: "A2", Slug: "y", ImageURL: "a", CreatedBy: "user_1", CreatedAt: 10, UpdatedAt: 150}
	b200 := store.Organization{ID: "org_b", Name: "B1", Slug: "x", ImageURL: "b", CreatedBy: "user_2", CreatedAt: 20, UpdatedAt: 200}
	withSlug := func(o store.Organization, slug string) store.Organization { o.Slug = slug; return o }

	t.Run("the newer holder first", func(t *testing.T) {
		eachMode(t, func(t *testing.T, s *store.Store) {
			mustOrg(t, s, b200, store.Inserted)
			mustOrg(t, s, a100, store.Inserted)
			if got, want := getOrg(t, s, "org_a"), withSlug(a100, ""); got != want {
				t.Errorf("org_a = %+v; want its data without the slug: %+v", got, want)
			}
			if got := getOrg(t, s, "org_b"); got != b200 {
				t.Errorf("org_b = %+v; want %+v", got, b200)
			}
			mustOrg(t, s, a150, store.Updated)
			if got := getOrg(t, s, "org_a"); got != a150 {
				t.Errorf("org_a = %+v; want %+v", got, a150)
			}
		})
	})
	t.Run("the older holder first", func(t *testing.T) {
		eachMode(t, func(t *testing.T, s *store.Store) {
			mustOrg(t, s, a100, store.Inserted)
			mustOrg(t, s, b200, store.Inserted)
			if got := getOrg(t, s, "org_b"); got != b200 {
				t.Errorf("org_b = %+v; want %+v", got, b200)
			}
			if got, want := getOrg(t, s, "org_a"), withSlug(a100, ""); got != want {
				t.Errorf("org_a = %+v; want its record with the slug removed: %+v", got, want)
			}
			mustOrg(t, s, a150, store.Updated)
			if got := getOrg(t, s, "org_a"); got != a150 {
				t.Errorf("org_a = %+v; want %+v", got, a150)
			}
		})
	})
	t.Run("every order", func(t *testing.T) {
		events := []store.Organization{a100, a150, b200}
		for _, order := range permutations(len(events)) {
			t.Run(fmt.Sprint(order), func(t *testing.T) {
				eachMode(t, func(t *testing.T, s *store.Store) {
					for _, i := range order {
						mustOrg(t, s, events[i], "")
					}
					if got := getOrg(t, s, "org_a"); got != a150 {
						t.Errorf("org_a = %+v; want %+v", got, a150)
					}
					if got := getOrg(t, s, "org_b"); got != b200 {
						t.Errorf("org_b = %+v; want %+v", got, b200)
					}
				})
			})
		}
	})
	t.Run("a rename frees the old slug", func(t *testing.T) {
		eachMode(t, func(t *testing.T, s *store.Store) {
			mustOrg(t, s, a100, store.Inserted)
			mustOrg(t, s, a150, store.Updated)
			// C's record is older than A's, but A no longer holds "x".
			c := store.Organization{ID: "org_c", Name: "C", Slug: "x", UpdatedAt: 120}
			mustOrg(t, s, c, store.Inserted)
			if got := getOrg(t, s, "org_c"); got != c {
				t.Errorf("org_c = %+v; want %+v", got, c)
			}
		})
	})
	t.Run("equal updated_at: the later created_at wins, in either order", func(t *testing.T) {
		early := store.Organization{ID: "org_e", Name: "E", Slug: "z", CreatedAt: 10, UpdatedAt: 100}
		late := store.Organization{ID: "org_l", Name: "L", Slug: "z", CreatedAt: 20, UpdatedAt: 100}
		for _, first := range []bool{true, false} {
			eachMode(t, func(t *testing.T, s *store.Store) {
				if first {
					mustOrg(t, s, early, store.Inserted)
					mustOrg(t, s, late, store.Inserted)
				} else {
					mustOrg(t, s, late, store.Inserted)
					mustOrg(t, s, early, store.Inserted)
				}
				if l, e := getOrg(t, s, "org_l"), getOrg(t, s, "org_e"); l.Slug != "z" || e.Slug != "" {
					t.Errorf("early first %t: org_l slug %q, org_e slug %q; want z and none", first, l.Slug, e.Slug)
				}
			})
		}
	})
}
