package clerk_test

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"clerksync/clerk"
	"clerksync/clerk/clerkfake"
)

// TestOrganizations: the client maps the Backend API's organizations and memberships to the
// same objects a webhook carries (so that StoreOrganization and StoreMembership are the one
// mapping), pages and filters them as asked, and tells a missing organization apart.
func TestOrganizations(t *testing.T) {
	t.Parallel()
	fake := clerkfake.New(t, testKey, clerkfake.User{ID: "user_1", FirstName: "Ada", Email: "ada@example.com", CreatedAt: 500, UpdatedAt: 700})
	acme := clerkfake.Organization{ID: "org_1", Name: "Acme", Slug: "acme", ImageURL: "https://img.clerk.com/org_1", CreatedBy: "user_1", CreatedAt: 500, UpdatedAt: 700}
	bare := clerkfake.Organization{ID: "org_2", Name: "Bare", CreatedAt: 600, UpdatedAt: 800} // null slug and image
	ada := clerkfake.NewMembership("org_1", "user_1", "org:admin", 900)
	bob := clerkfake.NewMembership("org_1", "user_2", "org:member", 950) // a user the stand-in lacks
	for _, o := range []clerkfake.Organization{acme, bare} {
		fake.PutOrganization(o)
	}
	for _, m := range []clerkfake.Membership{ada, bob} {
		fake.PutMembership(m)
	}
	api := newAPI(t, fake, clerk.APIConfig{})

	page, err := api.ListOrganizations(t.Context(), 1, 1)
	if want := (clerk.OrganizationPage{Organizations: []clerk.Organization{bare.Clerk()}, Total: 2}); err != nil || !reflect.DeepEqual(page, want) {
		t.Errorf("ListOrganizations(1, 1) = %+v, %v; want %+v", page, err, want)
	}
	if got, err := api.GetOrganization(t.Context(), "org_1"); err != nil || got != acme.Clerk() {
		t.Errorf("GetOrganization(org_1) = %+v, %v; want %+v", got, err, acme.Clerk())
	}
	if got, err := api.GetOrganization(t.Context(), "org_gone"); !errors.Is(err, clerk.ErrOrganizationNotFound) {
		t.Errorf("GetOrganization(org_gone) = %+v, %v; want an error wrapping ErrOrganizationNotFound", got, err)
	}
	if got, err := api.GetOrganization(t.Context(), " "); err == nil || errors.Is(err, clerk.ErrOrganizationNotFound) {
		t.Errorf("GetOrganization(blank) = %+v, %v; want an error, not ErrOrganizationNotFound", got, err)
	}

	members, err := api.ListMemberships(t.Context(), "org_1", nil, 500, 0)
	want := clerk.MembershipPage{Memberships: []clerk.OrganizationMembership{ada.Clerk(), bob.Clerk()}, Total: 2}
	if err != nil || !reflect.DeepEqual(members, want) {
		t.Errorf("ListMemberships(org_1) = %+v, %v; want %+v", members, err, want)
	}
	members, err = api.ListMemberships(t.Context(), "org_1", []string{"user_2"}, 500, 0)
	want = clerk.MembershipPage{Memberships: []clerk.OrganizationMembership{bob.Clerk()}, Total: 1}
	if err != nil || !reflect.DeepEqual(members, want) {
		t.Errorf("ListMemberships(org_1, user_2) = %+v, %v; want %+v", members, err, want)
	}
	if got, err := api.ListMemberships(t.Context(), "org_gone", nil, 500, 0); !errors.Is(err, clerk.ErrOrganizationNotFound) {
		t.Errorf("ListMemberships(org_gone) = %+v, %v; want an error wrapping ErrOrganizationNotFound", got, err)
	}
	wantReqs := []string{
		"GET /v1/organizations?limit=1&offset=1&order_by=%2Bcreated_at",
		"GET /v1/organizations/org_1",
		"GET /v1/organizations/org_gone",
		"GET /v1/organizations/org_1/memberships?limit=500&offset=0&order_by=%2Bcreated_at",
		"GET /v1/organizations/org_1/memberships?limit=500&offset=0&order_by=%2Bcreated_at&user_id=user_2",
		"GET /v1/organizations/org_gone/memberships?limit=500&offset=0&order_by=%2Bcreated_at",
	}
	if reqs := fake.Requests(); !reflect.DeepEqual(reqs, wantReqs) {
		t.Errorf("requests = %q; want %q", reqs, wantReqs)
	}

	// What the webhook functions would store, the API's objects store too.
	if o, err := page.Organizations[0].StoreOrganization(0); err != nil || o.Slug != "" || o.ImageURL != "" || o.UpdatedAt != 800 {
		t.Errorf("StoreOrganization of org_2 = %+v, %v; want no slug, no image, updated_at 800", o, err)
	}
	if m, err := members.Memberships[0].StoreMembership(0); err != nil || m.OrgID != "org_1" || m.UserID != "user_2" || m.Role != "org:member" {
		t.Errorf("StoreMembership of %s = %+v, %v; want org_1, user_2, org:member", bob.ID, m, err)
	}
}

// TestOrganizationsNotEnabled: an instance with organizations turned off answers every
// organization endpoint with organization_not_enabled_in_instance, which the client tells
// apart (not as a missing organization).
func TestOrganizationsNotEnabled(t *testing.T) {
	t.Parallel()
	fake := clerkfake.New(t, testKey)
	fake.DisableOrganizations()
	api := newAPI(t, fake, clerk.APIConfig{})
	if got, err := api.ListOrganizations(t.Context(), 10, 0); !errors.Is(err, clerk.ErrOrganizationsNotEnabled) {
		t.Errorf("ListOrganizations = %+v, %v; want an error wrapping ErrOrganizationsNotEnabled", got, err)
	}
	if got, err := api.GetOrganization(t.Context(), "org_1"); !errors.Is(err, clerk.ErrOrganizationsNotEnabled) || errors.Is(err, clerk.ErrOrganizationNotFound) {
		t.Errorf("GetOrganization = %+v, %v; want an error wrapping ErrOrganizationsNotEnabled only", got, err)
	}
	if got, err := api.ListMemberships(t.Context(), "org_1", nil, 10, 0); !errors.Is(err, clerk.ErrOrganizationsNotEnabled) {
		t.Errorf("ListMemberships = %+v, %v; want an error wrapping ErrOrganizationsNotEnabled", got, err)
	}
}

// TestOrganizationsRateLimited: the organization endpoints sit out a 429 as the users' do.
func TestOrganizationsRateLimited(t *testing.T) {
	t.Parallel()
	fake := clerkfake.New(t, testKey)
	fake.PutOrganization(clerkfake.NewOrganization("org_1", "Acme", 700))
	fake.RateLimitOn("GET /v1/organizations?", "1")
	fake.RateLimitOn("GET /v1/organizations/org_1/memberships", "120")
	api := newAPI(t, fake, clerk.APIConfig{})
	start := time.Now()
	if page, err := api.ListOrganizations(t.Context(), 10, 0); err != nil || len(page.Organizations) != 1 || time.Since(start) < time.Second {
		t.Errorf("ListOrganizations after a 429 with Retry-After 1 = %+v, %v after %s; want the organization, after 1 s", page, err, time.Since(start))
	}
	var rl *clerk.RateLimitedError
	if _, err := api.ListMemberships(t.Context(), "org_1", nil, 10, 0); !errors.As(err, &rl) || rl.RetryAfter != 120*time.Second {
		t.Errorf("ListMemberships after a 429 with Retry-After 120 = %v; want a RateLimitedError of 2m0s", err)
	}
}
