package clerk_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"clerksync/clerk"
	"clerksync/store"
)

// examplesDir holds Clerk's documented webhook payloads (copied verbatim from Clerk's OpenAPI
// specification).
var examplesDir = filepath.Join("..", "testdata", "clerk-examples")

// exampleData decodes the data of one of Clerk's example payloads into v, the way the Inngest
// SDK decodes the event the bridge forwards, and returns the event's type and its timestamp in
// Unix milliseconds (the examples give seconds).
func exampleData(t *testing.T, file string, v any) (string, int64) {
	t.Helper()
	body, err := os.ReadFile(filepath.Join(examplesDir, file))
	if err != nil {
		t.Fatal(err)
	}
	var env struct {
		Type      string          `json:"type"`
		Timestamp int64           `json:"timestamp"`
		Data      json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	if err := json.Unmarshal(env.Data, v); err != nil {
		t.Fatalf("%s: data: %v", file, err)
	}
	ts := env.Timestamp
	if ts < 100_000_000_000 {
		ts *= 1000
	}
	return env.Type, ts
}

// The ids of Clerk's examples.
const (
	exampleOrgID        = "org_2g7np7Hrk0SN6kj5EDMLDaKNL0S"
	exampleMembershipID = "orgmem_2g7np7Hrk0SN6kj5EDMLDaKNL0S"
	exampleMemberID     = "user_2h8op3Isl1QR7tKu5FGNfaLKEoU"
	exampleCreatorID    = "user_2g7np7Hrk0SN6kj5EDMLDaKNL0S"
)

// TestOrganizationExamples: Clerk's documented organization.created and organization.updated
// map to the stored organization, and organization.deleted's data reads as its id and slug.
func TestOrganizationExamples(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file, wantType string
		want           store.Organization
	}{{
		file: "openapi-organization.created.json", wantType: "organization.created",
		want: store.Organization{ID: exampleOrgID, Name: "Acme Corp", Slug: "acme-corp", ImageURL: "https://img.clerk.com/xxxxxx",
			CreatedBy: exampleCreatorID, CreatedAt: 1716883200000, UpdatedAt: 1716883200000},
	}, {
		file: "openapi-organization.updated.json", wantType: "organization.updated",
		want: store.Organization{ID: exampleOrgID, Name: "Acme Corp Updated", Slug: "acme-corp-updated", ImageURL: "https://img.clerk.com/yyyyyy",
			CreatedBy: exampleCreatorID, CreatedAt: 1716883200000, UpdatedAt: 1716883500000},
	}}
	for _, tc := range tests {
		var o clerk.Organization
		typ, ts := exampleData(t, tc.file, &o)
		if typ != tc.wantType {
			t.Errorf("%s: type %q; want %q", tc.file, typ, tc.wantType)
		}
		got, err := o.StoreOrganization(ts)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: StoreOrganization = %+v, %v\nwant %+v", tc.file, got, err, tc.want)
		}
	}

	var d clerk.DeletedOrganization
	if typ, _ := exampleData(t, "openapi-organization.deleted.json", &d); typ != "organization.deleted" {
		t.Errorf("organization.deleted example: type %q", typ)
	}
	if want := (clerk.DeletedOrganization{ID: exampleOrgID, Slug: "acme-corp", Deleted: true}); d != want {
		t.Errorf("organization.deleted data = %+v; want %+v", d, want)
	}
	if id, err := d.OrganizationID(); id != exampleOrgID || err != nil {
		t.Errorf("OrganizationID = %q, %v; want %q", id, err, exampleOrgID)
	}
}

// TestMembershipExamples: Clerk's documented membership events map to the stored membership,
// which keeps the ids and the role, and nothing of the member's public data.
func TestMembershipExamples(t *testing.T) {
	t.Parallel()
	member := func(role string, updatedAt int64) store.Membership {
		return store.Membership{ID: exampleMembershipID, OrgID: exampleOrgID, UserID: exampleMemberID, Role: role,
			CreatedAt: 1716883200000, UpdatedAt: updatedAt}
	}
	tests := []struct {
		file, wantType string
		want           store.Membership
	}{
		{"openapi-organizationMembership.created.json", "organizationMembership.created", member("org:member", 1716883200000)},
		{"openapi-organizationMembership.updated.json", "organizationMembership.updated", member("org:admin", 1716883500000)},
		// The deletion carries the whole membership, as it was before.
		{"openapi-organizationMembership.deleted.json", "organizationMembership.deleted", member("org:member", 1716883200000)},
	}
	for _, tc := range tests {
		var m clerk.OrganizationMembership
		typ, ts := exampleData(t, tc.file, &m)
		if typ != tc.wantType {
			t.Errorf("%s: type %q; want %q", tc.file, typ, tc.wantType)
		}
		got, err := m.StoreMembership(ts)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: StoreMembership = %+v, %v\nwant %+v", tc.file, got, err, tc.want)
		}
		if id, err := m.MembershipID(); id != exampleMembershipID || err != nil {
			t.Errorf("%s: MembershipID = %q, %v; want %q", tc.file, id, err, exampleMembershipID)
		}
		// What the function reads of the event holds no personal data of the member.
		read, _ := json.Marshal(m)
		for _, personal := range []string{"Jane", "Doe", "jane.doe@acme.com", "img.clerk.com"} {
			if strings.Contains(string(read), personal) {
				t.Errorf("%s: the membership as read, %s, holds %q", tc.file, read, personal)
			}
		}
	}
}

// acme is a complete Clerk organization.
func acme() clerk.Organization {
	return clerk.Organization{ID: "org_1", Name: "Acme", Slug: "acme", ImageURL: "https://img.example/acme",
		CreatedBy: "user_1", CreatedAt: 100, UpdatedAt: 200}
}

// membership is a complete Clerk membership.
func membership() clerk.OrganizationMembership {
	return clerk.OrganizationMembership{ID: "orgmem_1", Role: "org:admin",
		Organization: clerk.MembershipOrganization{ID: "org_1"}, PublicUserData: clerk.PublicUserData{UserID: "user_1"},
		CreatedAt: 100, UpdatedAt: 200}
}

func TestStoreOrganization(t *testing.T) {
	t.Parallel()
	full := store.Organization{ID: "org_1", Name: "Acme", Slug: "acme", ImageURL: "https://img.example/acme",
		CreatedBy: "user_1", CreatedAt: 100, UpdatedAt: 200}
	tests := []struct {
		name string
		edit func(o *clerk.Organization)
		ts   int64
		want func(o *store.Organization)
	}{
		{"all fields", func(*clerk.Organization) {}, 999, func(*store.Organization) {}},
		{"padded id", func(o *clerk.Organization) { o.ID = " org_1\t" }, 0, func(*store.Organization) {}},
		{"no updated_at: event ts", func(o *clerk.Organization) { o.UpdatedAt = 0 }, 999, func(o *store.Organization) { o.UpdatedAt = 999 }},
		{"no slug, image or creator", func(o *clerk.Organization) { o.Slug, o.ImageURL, o.CreatedBy = "", "", "" }, 0,
			func(o *store.Organization) { o.Slug, o.ImageURL, o.CreatedBy = "", "", "" }},
	}
	for _, tc := range tests {
		in := acme()
		tc.edit(&in)
		want := full
		tc.want(&want)
		if got, err := in.StoreOrganization(tc.ts); err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: StoreOrganization = %+v, %v\nwant %+v", tc.name, got, err, want)
		}
	}
	// Null strings, as Clerk sends a missing slug or image, read as "".
	var o clerk.Organization
	if err := json.Unmarshal([]byte(`{"id":"org_1","name":"Acme","slug":null,"image_url":null,"created_by":null,"created_at":1,"updated_at":2}`), &o); err != nil {
		t.Fatal(err)
	}
	if got, err := o.StoreOrganization(0); err != nil || got != (store.Organization{ID: "org_1", Name: "Acme", CreatedAt: 1, UpdatedAt: 2}) {
		t.Errorf("StoreOrganization of nulls = %+v, %v", got, err)
	}
}

func TestStoreOrganizationUnusable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		edit func(o *clerk.Organization)
		ts   int64
	}{
		{"no id", func(o *clerk.Organization) { o.ID = "" }, 999},
		{"blank id", func(o *clerk.Organization) { o.ID = " \t" }, 999},
		{"no updated_at and no event ts", func(o *clerk.Organization) { o.UpdatedAt = 0 }, 0},
		{"negative updated_at and no event ts", func(o *clerk.Organization) { o.UpdatedAt = -1 }, 0},
	}
	for _, tc := range tests {
		in := acme()
		tc.edit(&in)
		if got, err := in.StoreOrganization(tc.ts); !errors.Is(err, clerk.ErrBadOrganization) {
			t.Errorf("%s: StoreOrganization = %+v, %v; want ErrBadOrganization", tc.name, got, err)
		}
	}
	for _, id := range []string{"", "  "} {
		if got, err := (clerk.DeletedOrganization{ID: id, Deleted: true}).OrganizationID(); !errors.Is(err, clerk.ErrBadOrganization) {
			t.Errorf("OrganizationID of %q = %q, %v; want ErrBadOrganization", id, got, err)
		}
	}
}

func TestStoreMembership(t *testing.T) {
	t.Parallel()
	full := store.Membership{ID: "orgmem_1", OrgID: "org_1", UserID: "user_1", Role: "org:admin", CreatedAt: 100, UpdatedAt: 200}
	tests := []struct {
		name string
		edit func(m *clerk.OrganizationMembership)
		ts   int64
		want func(m *store.Membership)
	}{
		{"all fields", func(*clerk.OrganizationMembership) {}, 999, func(*store.Membership) {}},
		{"padded ids", func(m *clerk.OrganizationMembership) {
			m.ID, m.Organization.ID, m.PublicUserData.UserID = " orgmem_1", "org_1 ", "\tuser_1"
		}, 0, func(*store.Membership) {}},
		{"no updated_at: event ts", func(m *clerk.OrganizationMembership) { m.UpdatedAt = 0 }, 999, func(m *store.Membership) { m.UpdatedAt = 999 }},
		{"no role", func(m *clerk.OrganizationMembership) { m.Role = "" }, 0, func(m *store.Membership) { m.Role = "" }},
	}
	for _, tc := range tests {
		in := membership()
		tc.edit(&in)
		want := full
		tc.want(&want)
		if got, err := in.StoreMembership(tc.ts); err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: StoreMembership = %+v, %v\nwant %+v", tc.name, got, err, want)
		}
	}
}

func TestStoreMembershipUnusable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		edit func(m *clerk.OrganizationMembership)
		ts   int64
	}{
		{"no id", func(m *clerk.OrganizationMembership) { m.ID = "" }, 999},
		{"blank id", func(m *clerk.OrganizationMembership) { m.ID = " " }, 999},
		{"no organization", func(m *clerk.OrganizationMembership) { m.Organization = clerk.MembershipOrganization{} }, 999},
		{"blank organization id", func(m *clerk.OrganizationMembership) { m.Organization.ID = "\t" }, 999},
		{"no public_user_data", func(m *clerk.OrganizationMembership) { m.PublicUserData = clerk.PublicUserData{} }, 999},
		{"blank user id", func(m *clerk.OrganizationMembership) { m.PublicUserData.UserID = " " }, 999},
		{"no updated_at and no event ts", func(m *clerk.OrganizationMembership) { m.UpdatedAt = 0 }, 0},
	}
	for _, tc := range tests {
		in := membership()
		tc.edit(&in)
		if got, err := in.StoreMembership(tc.ts); !errors.Is(err, clerk.ErrBadMembership) {
			t.Errorf("%s: StoreMembership = %+v, %v; want ErrBadMembership", tc.name, got, err)
		}
	}
	// A deletion needs only the membership's id.
	del := membership()
	del.Organization, del.PublicUserData, del.UpdatedAt = clerk.MembershipOrganization{}, clerk.PublicUserData{}, 0
	if id, err := del.MembershipID(); id != "orgmem_1" || err != nil {
		t.Errorf("MembershipID without organization, user or updated_at = %q, %v; want orgmem_1", id, err)
	}
	del.ID = " "
	if id, err := del.MembershipID(); !errors.Is(err, clerk.ErrBadMembership) {
		t.Errorf("MembershipID of a blank id = %q, %v; want ErrBadMembership", id, err)
	}
}
