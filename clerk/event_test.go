package clerk_test

import (
	"slices"
	"testing"

	"clerksync/clerk"
	"clerksync/clerk/event"
)

// TestEventForwards: the contract's names forwarded here are the contract's (clerk/event's
// tests pin its values).
func TestEventForwards(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ name, got, want string }{
		{"EventNamePrefix", clerk.EventNamePrefix, event.NamePrefix},
		{"UserCreated", clerk.UserCreated, event.UserCreated},
		{"UserUpdated", clerk.UserUpdated, event.UserUpdated},
		{"UserDeleted", clerk.UserDeleted, event.UserDeleted},
		{"OrganizationCreated", clerk.OrganizationCreated, event.OrganizationCreated},
		{"OrganizationUpdated", clerk.OrganizationUpdated, event.OrganizationUpdated},
		{"OrganizationDeleted", clerk.OrganizationDeleted, event.OrganizationDeleted},
		{"MembershipCreated", clerk.MembershipCreated, event.MembershipCreated},
		{"MembershipUpdated", clerk.MembershipUpdated, event.MembershipUpdated},
		{"MembershipDeleted", clerk.MembershipDeleted, event.MembershipDeleted},
		{`EventName("user.created")`, clerk.EventName("user.created"), event.Name("user.created")},
		{`EventID("msg_1")`, clerk.EventID("msg_1"), event.ID("msg_1")},
		{`SvixID("clerk-msg_1")`, clerk.SvixID("clerk-msg_1"), event.SvixID("clerk-msg_1")},
	} {
		if tt.got != tt.want {
			t.Errorf("clerk.%s = %q; want %q, clerk/event's", tt.name, tt.got, tt.want)
		}
	}
	if got, want := clerk.HandledEvents(), event.Handled(); !slices.Equal(got, want) {
		t.Errorf("clerk.HandledEvents() = %q; want %q, clerk/event's", got, want)
	}
	for _, typ := range []string{"user.created", "user", "clerk/user.created"} {
		if got, want := clerk.IsEventType(typ), event.IsType(typ); got != want {
			t.Errorf("clerk.IsEventType(%q) = %v; want %v, clerk/event's", typ, got, want)
		}
	}
}
