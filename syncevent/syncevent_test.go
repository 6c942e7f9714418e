package syncevent_test

import (
	"encoding/json"
	"slices"
	"testing"

	"clerksync/syncevent"
)

// TestNames pins the names of the events the service emits: workflows are triggered by them,
// so renaming one strands every workflow written against it.
func TestNames(t *testing.T) {
	t.Parallel()
	want := []string{
		"clerk-sync/user.created", "clerk-sync/user.updated", "clerk-sync/user.deleted",
		"clerk-sync/organization.created", "clerk-sync/organization.updated", "clerk-sync/organization.deleted",
		"clerk-sync/organizationMembership.created", "clerk-sync/organizationMembership.updated", "clerk-sync/organizationMembership.deleted",
	}
	if got := syncevent.Names(); !slices.Equal(got, want) {
		t.Errorf("Names() = %q; want %q", got, want)
	}
	var built []string
	for _, o := range []string{syncevent.ObjectUser, syncevent.ObjectOrganization, syncevent.ObjectMembership} {
		for _, k := range []string{syncevent.Created, syncevent.Updated, syncevent.Deleted} {
			built = append(built, syncevent.Name(o, k))
		}
	}
	if !slices.Equal(built, want) {
		t.Errorf("Name(object, kind) for every object and kind = %q; want %q", built, want)
	}
}

// TestID pins the ids: the same change gives the same id (so Inngest drops a retry's copy),
// and any part that tells two changes apart gives another.
func TestID(t *testing.T) {
	t.Parallel()
	const want = "clerk-sync-user.updated-user_2abc-1700000000000"
	if got := syncevent.ID(syncevent.ObjectUser, syncevent.Updated, "user_2abc", 1_700_000_000_000); got != want {
		t.Errorf("ID(user, updated, user_2abc, 1700000000000) = %q; want %q", got, want)
	}
	seen := map[string]bool{}
	for _, o := range []string{syncevent.ObjectUser, syncevent.ObjectOrganization} {
		for _, k := range []string{syncevent.Created, syncevent.Updated} {
			for _, id := range []string{"a", "b"} {
				for _, at := range []int64{1, 2} {
					got := syncevent.ID(o, k, id, at)
					if seen[got] {
						t.Errorf("ID(%s, %s, %s, %d) = %q, as another change's", o, k, id, at, got)
					}
					seen[got] = true
				}
			}
		}
	}
}

// TestEventJSON pins the event's JSON as Inngest receives it and a workflow reads it.
func TestEventJSON(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		evt  syncevent.Event
		want string
	}{
		{syncevent.New(syncevent.ObjectUser, syncevent.Created, "user_1", 5, []string{"email", "full_name"}),
			`{"id":"clerk-sync-user.created-user_1-5","name":"clerk-sync/user.created","data":{"id":"user_1","change":"created","updated_at":5,"changed_fields":["email","full_name"]}}`},
		{syncevent.New(syncevent.ObjectMembership, syncevent.Deleted, "orgmem_1", 7, nil),
			`{"id":"clerk-sync-organizationMembership.deleted-orgmem_1-7","name":"clerk-sync/organizationMembership.deleted","data":{"id":"orgmem_1","change":"deleted","updated_at":7,"changed_fields":[]}}`},
	} {
		got, err := json.Marshal(c.evt)
		if err != nil || string(got) != c.want {
			t.Errorf("json.Marshal(%+v) = %s, %v; want %s", c.evt, got, err, c.want)
		}
	}
}
