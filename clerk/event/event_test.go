package event_test

import (
	"slices"
	"strings"
	"testing"

	"clerksync/clerk/event"
)

// TestEventContract pins the names and ids under which the webhook bridge forwards Clerk's
// events and the functions are triggered: changing them strands the events already in Inngest
// (and the runs Inngest still retries), and breaks Inngest's deduplication of Svix retries.
func TestEventContract(t *testing.T) {
	t.Parallel()
	if event.NamePrefix != "clerk/" || event.IDPrefix != "clerk-" {
		t.Errorf("prefixes = %q, %q; want %q, %q", event.NamePrefix, event.IDPrefix, "clerk/", "clerk-")
	}
	for _, tt := range []struct{ clerkType, got, want string }{
		{"user.created", event.UserCreated, "clerk/user.created"},
		{"user.updated", event.UserUpdated, "clerk/user.updated"},
		{"user.deleted", event.UserDeleted, "clerk/user.deleted"},
		{"organization.created", event.OrganizationCreated, "clerk/organization.created"},
		{"organization.updated", event.OrganizationUpdated, "clerk/organization.updated"},
		{"organization.deleted", event.OrganizationDeleted, "clerk/organization.deleted"},
		{"organizationMembership.created", event.MembershipCreated, "clerk/organizationMembership.created"},
		{"organizationMembership.updated", event.MembershipUpdated, "clerk/organizationMembership.updated"},
		{"organizationMembership.deleted", event.MembershipDeleted, "clerk/organizationMembership.deleted"},
	} {
		if tt.got != tt.want {
			t.Errorf("trigger name for %s = %q; want %q", tt.clerkType, tt.got, tt.want)
		}
		if got := event.Name(tt.clerkType); got != tt.want {
			t.Errorf("Name(%q) = %q; want %q, the functions' trigger", tt.clerkType, got, tt.want)
		}
		if !strings.HasPrefix(tt.got, event.NamePrefix) {
			t.Errorf("trigger name %q does not start with NamePrefix %q", tt.got, event.NamePrefix)
		}
	}
	if got := event.Name("organizationMembership.deleted"); got != "clerk/organizationMembership.deleted" {
		t.Errorf("Name(organizationMembership.deleted) = %q", got)
	}
	if got := event.ID("msg_1"); got != "clerk-msg_1" {
		t.Errorf(`ID("msg_1") = %q; want "clerk-msg_1"`, got)
	}
	for _, id := range []string{"msg_1", "msg_2abcDEF", ""} {
		if got := event.SvixID(event.ID(id)); got != id {
			t.Errorf("SvixID(ID(%q)) = %q; want %q", id, got, id)
		}
	}
	if got := event.SvixID("01HQ-not-from-the-bridge"); got != "01HQ-not-from-the-bridge" {
		t.Errorf("SvixID of an id without the prefix = %q; want it unchanged", got)
	}
}

// TestHandled: the events the bridge forwards by default are the nine the functions are
// triggered by (functions' TestRegisteredFunctions holds the triggers to this list).
func TestHandled(t *testing.T) {
	t.Parallel()
	want := []string{
		"clerk/user.created", "clerk/user.updated", "clerk/user.deleted",
		"clerk/organization.created", "clerk/organization.updated", "clerk/organization.deleted",
		"clerk/organizationMembership.created", "clerk/organizationMembership.updated", "clerk/organizationMembership.deleted",
	}
	got := event.Handled()
	if !slices.Equal(got, want) {
		t.Errorf("Handled() = %q; want %q", got, want)
	}
	got[0] = "changed"
	if event.Handled()[0] != want[0] {
		t.Errorf("Handled() returns a shared slice: a caller's change shows in the next call")
	}
	for _, name := range want {
		if typ := strings.TrimPrefix(name, event.NamePrefix); !event.IsType(typ) {
			t.Errorf("IsType(%q) = false for a handled type; want true", typ)
		}
	}
}

// TestIsType: the shape CLERK_FORWARD_EVENTS and the ignored-type metric accept.
func TestIsType(t *testing.T) {
	t.Parallel()
	tests := []struct {
		typ  string
		want bool
	}{
		{"user.created", true},
		{"organizationMembership.deleted", true},
		{"subscriptionItem.pastDue", true},
		{"email.created", true},
		{"a1.b_2", true},
		{strings.Repeat("a", 31) + "." + strings.Repeat("b", 32), true},  // 64 bytes
		{strings.Repeat("a", 32) + "." + strings.Repeat("b", 32), false}, // 65 bytes
		{"", false},
		{"user", false},
		{"user.", false},
		{".created", false},
		{"user.created.now", false},
		{"clerk/user.created", false},
		{"user created", false},
		{"user-x.created", false},
		{"1user.created", false},
		{"user._created", false},
		{"*", false},
		{"usér.created", false},
	}
	for _, tt := range tests {
		if got := event.IsType(tt.typ); got != tt.want {
			t.Errorf("IsType(%q) = %v; want %v", tt.typ, got, tt.want)
		}
	}
}
