package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// testOrgExamples drives Clerk's organization and membership examples, in order, through the
// whole service and the real dev server.
func (s *stack) testOrgExamples(t *testing.T) {
	ctx := context.Background()
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("..", "testdata", "clerk-examples", name))
		if err != nil {
			t.Fatalf("Clerk example %s: %v", name, err)
		}
		return b
	}
	const org, mem = "org_2g7np7Hrk0SN6kj5EDMLDaKNL0S", "orgmem_2g7np7Hrk0SN6kj5EDMLDaKNL0S"
	steps := []struct {
		file string
		done func() bool
	}{
		{"openapi-organization.created.json", func() bool { o, err := s.store.GetOrganization(ctx, org); return err == nil && o.Slug == "acme-corp" }},
		{"openapi-organization.updated.json", func() bool {
			o, err := s.store.GetOrganization(ctx, org)
			return err == nil && o.UpdatedAt > 1716883200000
		}},
		{"openapi-organizationMembership.created.json", func() bool {
			m, err := s.store.GetMembership(ctx, mem)
			return err == nil && !m.Deleted && m.OrgID == org && m.UserID == "user_2h8op3Isl1QR7tKu5FGNfaLKEoU"
		}},
		{"openapi-organizationMembership.updated.json", func() bool {
			m, err := s.store.GetMembership(ctx, mem)
			return err == nil && !m.Deleted && m.Role != ""
		}},
		{"openapi-organizationMembership.deleted.json", func() bool { m, err := s.store.GetMembership(ctx, mem); return err == nil && m.Deleted }},
		{"openapi-organization.deleted.json", func() bool {
			o, err := s.store.GetOrganization(ctx, org)
			return err == nil && o.Deleted && o.Slug == ""
		}},
	}
	for i, st := range steps {
		s.mustPost(t, read(st.file), fmt.Sprintf("msg_orgexample_%d_%d", i, time.Now().UnixNano()), http.StatusOK)
		s.waitFor(t, 30*time.Second, st.file, st.done)
	}
}

// orgEvent and membershipEvent build Clerk envelopes in the shapes of Clerk's examples.
func orgEvent(typ, id, slug string, updatedAt int64) []byte {
	data := map[string]any{"object": "organization", "id": id, "name": "Org " + id, "slug": slug,
		"image_url": "https://img.clerk.com/" + id, "created_by": "user_creator", "created_at": 1700000000000, "updated_at": updatedAt}
	if typ == "organization.deleted" {
		data = map[string]any{"object": "organization", "id": id, "slug": slug, "deleted": true}
	}
	b, _ := json.Marshal(map[string]any{"object": "event", "type": typ, "timestamp": updatedAt, "data": data})
	return b
}

func membershipEvent(typ, id, org, user, role string, updatedAt int64) []byte {
	data := map[string]any{"object": "organization_membership", "id": id, "role": role,
		"organization":     map[string]any{"object": "organization", "id": org},
		"public_user_data": map[string]any{"user_id": user, "first_name": "Private", "identifier": user + "@example.com"},
		"created_at":       1700000000000, "updated_at": updatedAt}
	b, _ := json.Marshal(map[string]any{"object": "event", "type": typ, "timestamp": updatedAt, "data": data})
	return b
}

// testOrgBurst: 40 organizations with 200 memberships whose events are shuffled and
// duplicated; deletions of organizations and users cascade to their memberships.
func (s *stack) testOrgBurst(t *testing.T) {
	ctx := context.Background()
	type delivery struct {
		body []byte
		id   string
	}
	var deliveries []delivery
	add := func(body []byte) {
		deliveries = append(deliveries, delivery{body, fmt.Sprintf("msg_orgburst_%d_%d", len(deliveries), time.Now().UnixNano())})
	}
	// The model: 40 organizations, each created and renamed; 200 memberships (5 per org, users
	// u0..u49), each created and given a new role; organizations 0-3 deleted; users u0-u4
	// deleted (their user.deleted events are in the burst too).
	const orgs, perOrg = 40, 5
	deletedOrg := func(o int) bool { return o < 4 }
	deletedUser := func(u int) bool { return u < 5 }
	userOf := func(o, k int) int { return (o*perOrg + k) % 50 }
	for o := range orgs {
		id := fmt.Sprintf("org_burst_%02d", o)
		add(orgEvent("organization.created", id, fmt.Sprintf("slug-%02d", o), 1700000001000))
		add(orgEvent("organization.updated", id, fmt.Sprintf("renamed-%02d", o), 1700000002000))
		if deletedOrg(o) {
			add(orgEvent("organization.deleted", id, fmt.Sprintf("renamed-%02d", o), 1700000009000))
		}
		for k := range perOrg {
			mid, user := fmt.Sprintf("orgmem_burst_%02d_%d", o, k), fmt.Sprintf("user_burst_%02d", userOf(o, k))
			add(membershipEvent("organizationMembership.created", mid, id, user, "org:member", 1700000003000))
			add(membershipEvent("organizationMembership.updated", mid, id, user, "org:admin", 1700000004000))
		}
	}
	for u := range 50 {
		id := fmt.Sprintf("user_burst_%02d", u)
		add(clerkUserEvent("user.created", id, "Member", id+"@example.com", 1700000000500))
		if deletedUser(u) {
			add(clerkDeleteEvent(id, 1700000008000))
		}
	}
	n := len(deliveries)
	for i := range n / 4 { // a quarter delivered twice, as Svix may
		deliveries = append(deliveries, deliveries[i*4])
	}
	rand.Shuffle(len(deliveries), func(i, j int) { deliveries[i], deliveries[j] = deliveries[j], deliveries[i] })

	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for _, d := range deliveries {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			for attempt := 0; ; attempt++ { // Svix retries with the same id
				got, err := s.post(d.body, d.id)
				if err == nil && got == http.StatusOK {
					return
				}
				if attempt == 10 {
					t.Errorf("POST %s = %d, %v after 10 retries", d.id, got, err)
					return
				}
				time.Sleep(500 * time.Millisecond)
			}
		})
	}
	wg.Wait()

	// The end state: live memberships are those of live orgs and live users, with the newer
	// role; deleted orgs are tombstones; renamed slugs held.
	checkOrg := func(o int) error {
		id := fmt.Sprintf("org_burst_%02d", o)
		org, err := s.store.GetOrganization(ctx, id)
		if err != nil {
			return fmt.Errorf("organization %s: %v", id, err)
		}
		if deletedOrg(o) != org.Deleted || (!org.Deleted && org.Slug != fmt.Sprintf("renamed-%02d", o)) {
			return fmt.Errorf("organization %s = %+v", id, org)
		}
		for k := range perOrg {
			mid := fmt.Sprintf("orgmem_burst_%02d_%d", o, k)
			m, err := s.store.GetMembership(ctx, mid)
			if err != nil {
				return fmt.Errorf("membership %s: %v", mid, err)
			}
			wantLive := !deletedOrg(o) && !deletedUser(userOf(o, k))
			if m.Deleted == wantLive || (wantLive && (m.Role != "org:admin" || m.UpdatedAt != 1700000004000)) {
				return fmt.Errorf("membership %s = %+v; want live %v with role org:admin", mid, m, wantLive)
			}
		}
		return nil
	}
	check := func() error {
		for o := range orgs {
			if err := checkOrg(o); err != nil {
				return err
			}
		}
		all, err := s.store.LiveMemberships(ctx, "", "")
		if err != nil {
			return err
		}
		var live []string // of this test's organizations: other tests share the database
		for _, m := range all {
			if strings.HasPrefix(m.OrgID, "org_burst_") {
				live = append(live, m.ID)
			}
		}
		want := 0
		for o := range orgs {
			for k := range perOrg {
				if !deletedOrg(o) && !deletedUser(userOf(o, k)) {
					want++
				}
			}
		}
		if len(live) != want {
			return fmt.Errorf("live memberships = %d; want %d", len(live), want)
		}
		return nil
	}
	// Each poll reads the organizations in order up to the first not yet in its end state
	// (arrived), then, once all are, checks the whole end state again.
	pending := make([]int, orgs)
	for o := range pending {
		pending[o] = o
	}
	for deadline := time.Now().Add(burstWait); ; time.Sleep(500 * time.Millisecond) {
		pending = pending[arrived(pending, func(o int) bool { return checkOrg(o) == nil }):]
		var err error
		if len(pending) > 0 {
			err = checkOrg(pending[0])
		} else if err = check(); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("organizations and memberships after %d deliveries (%d distinct): %v; dev server log:\n%s", len(deliveries), n, err, s.devLog())
		}
	}
}
