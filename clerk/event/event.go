// Package event is the contract between the webhook bridge and the Inngest functions: the
// names and ids under which Clerk's events travel through Inngest (Name, ID, UserCreated,
// OrganizationCreated, MembershipCreated, ...), the events the functions handle (Handled), and
// the shape of a Clerk event type (IsType). The bridge forwards each Clerk event to Inngest
// under the name Name(type) and the id ID(svix id); the functions are triggered by those
// names. It imports only the standard library, so that either side, and a test of either,
// can name an event without linking the other.
package event

import "strings"

const (
	// NamePrefix is put before Clerk's event type to name the Inngest event:
	// clerk/user.created.
	NamePrefix = "clerk/"
	// IDPrefix is put before the Svix message id to make the Inngest event id. Inngest
	// starts no run for an event whose id it has seen in the last 24 hours, so a Svix retry is
	// not run twice, except by a batched function (INNGEST_BATCH_SIZE above 1), which Inngest
	// hands every event: there the functions write an id once per batch, and the store's
	// guarded writes make a later copy change nothing.
	IDPrefix = "clerk-"
)

// The Inngest events the functions are triggered by, as the webhook bridge names them.
const (
	// UserCreated is Clerk's user.created: its data is a clerk.User.
	UserCreated = NamePrefix + "user.created"
	// UserUpdated is Clerk's user.updated: its data is a clerk.User.
	UserUpdated = NamePrefix + "user.updated"
	// UserDeleted is Clerk's user.deleted: its data is a clerk.DeletedObject.
	UserDeleted = NamePrefix + "user.deleted"

	// OrganizationCreated is Clerk's organization.created: its data is a clerk.Organization.
	OrganizationCreated = NamePrefix + "organization.created"
	// OrganizationUpdated is Clerk's organization.updated: its data is a clerk.Organization.
	OrganizationUpdated = NamePrefix + "organization.updated"
	// OrganizationDeleted is Clerk's organization.deleted: its data is a
	// clerk.DeletedOrganization.
	OrganizationDeleted = NamePrefix + "organization.deleted"

	// MembershipCreated is Clerk's organizationMembership.created: its data is a
	// clerk.OrganizationMembership.
	MembershipCreated = NamePrefix + "organizationMembership.created"
	// MembershipUpdated is Clerk's organizationMembership.updated: its data is a
	// clerk.OrganizationMembership.
	MembershipUpdated = NamePrefix + "organizationMembership.updated"
	// MembershipDeleted is Clerk's organizationMembership.deleted: its data is the deleted
	// clerk.OrganizationMembership (Clerk sends the whole membership).
	MembershipDeleted = NamePrefix + "organizationMembership.deleted"
)

// Handled returns the Inngest events the functions are triggered by, UserCreated to
// MembershipDeleted: the events of the Clerk types this service handles. The webhook bridge
// forwards only these types unless told to forward more. Each call returns a new slice.
func Handled() []string {
	return []string{
		UserCreated, UserUpdated, UserDeleted,
		OrganizationCreated, OrganizationUpdated, OrganizationDeleted,
		MembershipCreated, MembershipUpdated, MembershipDeleted,
	}
}

// maxTypeLen bounds IsType's types: Clerk's longest, such as
// organizationInvitation.accepted, are about 35 bytes.
const maxTypeLen = 64

// IsType reports whether t has the shape of a Clerk event type: two words joined by a dot,
// each a letter followed by letters, digits or underscores (user.created,
// organizationMembership.deleted, subscriptionItem.pastDue), at most 64 bytes in all.
func IsType(t string) bool {
	if len(t) > maxTypeLen {
		return false
	}
	dot := strings.IndexByte(t, '.')
	return dot > 0 && isWord(t[:dot]) && isWord(t[dot+1:])
}

// isWord reports whether w is a letter followed by letters, digits or underscores (ASCII).
func isWord(w string) bool {
	if w == "" {
		return false
	}
	for i := range len(w) {
		c := w[i]
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !letter && (i == 0 || !(c >= '0' && c <= '9' || c == '_')) {
			return false
		}
	}
	return true
}

// Name returns the name of the Inngest event that carries the Clerk event of type clerkType
// (user.created: clerk/user.created). It cannot fail; the bridge checks the type before it
// names an event after it.
func Name(clerkType string) string { return NamePrefix + clerkType }

// ID returns the id of the Inngest event that carries the webhook delivered as the Svix
// message svixID (msg_...: clerk-msg_...), so that Inngest drops a Svix retry of it. It cannot
// fail.
func ID(svixID string) string { return IDPrefix + svixID }

// SvixID returns the Svix message id an Inngest event id was made from by ID: eventID without
// IDPrefix. It cannot fail: an id without the prefix (an event not sent by the bridge) is
// returned unchanged.
func SvixID(eventID string) string { return strings.TrimPrefix(eventID, IDPrefix) }
