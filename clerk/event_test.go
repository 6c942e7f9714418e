package clerk_test

import (
	"slices"
	"strings"
	"testing"

	"clerksync/clerk"
)

// TestEventContract pins the names and ids under which the webhook bridge forwards Clerk's
// events and the functions are triggered: changing them strands the events already in Inngest
// (and the runs Inngest still retries), and breaks Inngest's deduplication of Svix retries.
func TestEventContract(t *testing.T) {
	if clerk.EventNamePrefix != "clerk/" || clerk.EventIDPrefix != "clerk-" {
		t.Errorf("prefixes = %q, %q; want %q, %q", clerk.EventNamePrefix, clerk.EventIDPrefix, "clerk/", "clerk-")
	}
	for _, tt := range []struct{ clerkType, got, want string }{
		{"user.created", clerk.UserCreated, "clerk/user.created"},
		{"user.updated", clerk.UserUpdated, "clerk/user.updated"},
		{"user.deleted", clerk.UserDeleted, "clerk/user.deleted"},
		{"organization.created", clerk.OrganizationCreated, "clerk/organization.created"},
		{"organization.updated", clerk.OrganizationUpdated, "clerk/organization.updated"},
		{"organization.deleted", clerk.OrganizationDeleted, "clerk/organization.deleted"},
		{"organizationMembership.created", clerk.MembershipCreated, "clerk/organizationMembership.created"},
		{"organizationMembership.updated", clerk.MembershipUpdated, "clerk/organizationMembership.updated"},
		{"organizationMembership.deleted", clerk.MembershipDeleted, "clerk/organizationMembership.deleted"},
	} {
		if tt.got != tt.want {
			t.Errorf("trigger name for %s = %q; want %q", tt.clerkType, tt.got, tt.want)
		}
		if got := clerk.EventName(tt.clerkType); got != tt.want {
			t.Errorf("EventName(%q) = %q; want %q, the functions' trigger", tt.clerkType, got, tt.want)
		}
		if !strings.HasPrefix(tt.got, clerk.EventNamePrefix) {
			t.Errorf("trigger name %q does not start with EventNamePrefix %q", tt.got, clerk.EventNamePrefix)
		}
	}
	if got := clerk.EventName("organizationMembership.deleted"); got != "clerk/organizationMembership.deleted" {
		t.Errorf("EventName(organizationMembership.deleted) = %q", got)
	}
	if got := clerk.EventID("msg_1"); got != "clerk-msg_1" {
		t.Errorf(`EventID("msg_1") = %q; want "clerk-msg_1"`, got)
	}
	for _, id := range []string{"msg_1", "msg_2abcDEF", ""} {
		if got := clerk.SvixID(clerk.EventID(id)); got != id {
			t.Errorf("SvixID(EventID(%q)) = %q; want %q", id, got, id)
		}
	}
	if got := clerk.SvixID("01HQ-not-from-the-bridge"); got != "01HQ-not-from-the-bridge" {
		t.Errorf("SvixID of an id without the prefix = %q; want it unchanged", got)
	}
}

// TestHandledEvents: the events the bridge forwards by default are the nine the functions are
// triggered by (functions' TestRegisteredFunctions holds the triggers to this list).
func TestHandledEvents(t *testing.T) {
	want := []string{
		"clerk/user.created", "clerk/user.updated", "clerk/user.deleted",
		"clerk/organization.created", "clerk/organization.updated", "clerk/organization.deleted",
		"clerk/organizationMembership.created", "clerk/organizationMembership.updated", "clerk/organizationMembership.deleted",
	}
	got := clerk.HandledEvents()
	if !slices.Equal(got, want) {
		t.Errorf("HandledEvents() = %q; want %q", got, want)
	}
	got[0] = "changed"
	if clerk.HandledEvents()[0] != want[0] {
		t.Errorf("HandledEvents() returns a shared slice: a caller's change shows in the next call")
	}
	for _, name := range want {
		if typ := strings.TrimPrefix(name, clerk.EventNamePrefix); !clerk.IsEventType(typ) {
			t.Errorf("IsEventType(%q) = false for a handled type; want true", typ)
		}
	}
}

func TestIsEventType(t *testing.T) {
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
		if got := clerk.IsEventType(tt.typ); got != tt.want {
			t.Errorf("IsEventType(%q) = %v; want %v", tt.typ, got, tt.want)
		}
	}
}
