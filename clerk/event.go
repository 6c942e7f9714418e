// Package clerk holds Clerk's objects and everything that reads them: the user object as
// webhooks and the Backend API carry it, and its mapping to the stored user (User,
// User.StoreUser); the organization and membership objects as webhooks carry them, and their
// mappings (Organization.StoreOrganization, OrganizationMembership.StoreMembership); the
// Backend API client over clerk-sdk-go (API); the reader of the Dashboard's user exports
// (ReadExport); and the contract between the webhook bridge and the Inngest functions: the
// names and ids under which Clerk's events travel through Inngest (EventName, EventID,
// UserCreated, OrganizationCreated, MembershipCreated, ...) and the events the functions
// handle (HandledEvents). The stand-in for the Backend API that tests use is the separate
// package clerk/clerkfake.
package clerk

import "strings"

// The event contract. The webhook bridge forwards each Clerk event to Inngest under the name
// EventName(type) and the id EventID(svix id); the functions are triggered by those names.
const (
	// EventNamePrefix is put before Clerk's event type to name the Inngest event:
	// clerk/user.created.
	EventNamePrefix = "clerk/"
	// EventIDPrefix is put before the Svix message id to make the Inngest event id. Inngest
	// starts no run for an event whose id it has seen in the last 24 hours, so a Svix retry is
	// not run twice, except by a batched function (INNGEST_BATCH_SIZE above 1), which Inngest
	// hands every event: there the functions write an id once per batch, and the store's
	// guarded writes make a later copy change nothing.
	EventIDPrefix = "clerk-"
)

// The Inngest events the functions are triggered by, as the webhook bridge names them.
const (
	// UserCreated is Clerk's user.created: its data is a User.
	UserCreated = EventNamePrefix + "user.created"
	// UserUpdated is Clerk's user.updated: its data is a User.
	UserUpdated = EventNamePrefix + "user.updated"
	// UserDeleted is Clerk's user.deleted: its data is a DeletedObject.
	UserDeleted = EventNamePrefix + "user.deleted"

	// OrganizationCreated is Clerk's organization.created: its data is an Organization.
	OrganizationCreated = EventNamePrefix + "organization.created"
	// OrganizationUpdated is Clerk's organization.updated: its data is an Organization.
	OrganizationUpdated = EventNamePrefix + "organization.updated"
	// OrganizationDeleted is Clerk's organization.deleted: its data is a DeletedOrganization.
	OrganizationDeleted = EventNamePrefix + "organization.deleted"

	// MembershipCreated is Clerk's organizationMembership.created: its data is an
	// OrganizationMembership.
	MembershipCreated = EventNamePrefix + "organizationMembership.created"
	// MembershipUpdated is Clerk's organizationMembership.updated: its data is an
	// OrganizationMembership.
	MembershipUpdated = EventNamePrefix + "organizationMembership.updated"
	// MembershipDeleted is Clerk's organizationMembership.deleted: its data is the deleted
	// OrganizationMembership (Clerk sends the whole membership).
	MembershipDeleted = EventNamePrefix + "organizationMembership.deleted"
)

// HandledEvents returns the Inngest events the functions are triggered by, UserCreated to
// MembershipDeleted: the events of the Clerk types this service handles. The webhook bridge
// forwards only these types unless told to forward more. Each call returns a new slice.
func HandledEvents() []string {
	return []string{
		UserCreated, UserUpdated, UserDeleted,
		OrganizationCreated, OrganizationUpdated, OrganizationDeleted,
		MembershipCreated, MembershipUpdated, MembershipDeleted,
	}
}

// maxEventTypeLen bounds IsEventType's types: Clerk's longest, such as
// organizationInvitation.accepted, are about 35 bytes.
const maxEventTypeLen = 64

// IsEventType reports whether t has the shape of a Clerk event type: two words joined by a
// dot, each a letter followed by letters, digits or underscores (user.created,
// organizationMembership.deleted, subscriptionItem.pastDue), at most 64 bytes in all.
func IsEventType(t string) bool {
	if len(t) > maxEventTypeLen {
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

// EventName returns the name of the Inngest event that carries the Clerk event of type
// clerkType (user.created: clerk/user.created). It cannot fail; the bridge checks the type
// before it names an event after it.
func EventName(clerkType string) string { return EventNamePrefix + clerkType }

// EventID returns the id of the Inngest event that carries the webhook delivered as the Svix
// message svixID (msg_...: clerk-msg_...), so that Inngest drops a Svix retry of it. It cannot
// fail.
func EventID(svixID string) string { return EventIDPrefix + svixID }

// SvixID returns the Svix message id an Inngest event id was made from by EventID: eventID
// without EventIDPrefix. It cannot fail: an id without the prefix (an event not sent by the
// bridge) is returned unchanged.
func SvixID(eventID string) string { return strings.TrimPrefix(eventID, EventIDPrefix) }
