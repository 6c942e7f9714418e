// Package clerk holds Clerk's objects and everything that reads them: the user object as
// webhooks and the Backend API carry it, and its mapping to the stored user (User,
// User.StoreUser); the organization and membership objects as webhooks carry them, and their
// mappings (Organization.StoreOrganization, OrganizationMembership.StoreMembership); the
// Backend API client over clerk-sdk-go (API); and the reader of the Dashboard's user exports
// (ReadExport). The contract between the webhook bridge and the Inngest functions (the names
// and ids under which Clerk's events travel through Inngest) is package clerk/event, which
// this package forwards (EventName, EventID, UserCreated, ...). The stand-in for the Backend
// API that tests use is the separate package clerk/clerkfake.
package clerk

import "clerksync/clerk/event"

// The event contract lives in package clerksync/clerk/event, which imports only the standard
// library. These are its names for the callers that name them through this package.
const (
	// EventNamePrefix is event.NamePrefix.
	EventNamePrefix = event.NamePrefix

	// UserCreated is event.UserCreated: its data is a User.
	UserCreated = event.UserCreated
	// UserUpdated is event.UserUpdated: its data is a User.
	UserUpdated = event.UserUpdated
	// UserDeleted is event.UserDeleted: its data is a DeletedObject.
	UserDeleted = event.UserDeleted
	// OrganizationCreated is event.OrganizationCreated: its data is an Organization.
	OrganizationCreated = event.OrganizationCreated
	// OrganizationUpdated is event.OrganizationUpdated: its data is an Organization.
	OrganizationUpdated = event.OrganizationUpdated
	// OrganizationDeleted is event.OrganizationDeleted: its data is a DeletedOrganization.
	OrganizationDeleted = event.OrganizationDeleted
	// MembershipCreated is event.MembershipCreated: its data is an OrganizationMembership.
	MembershipCreated = event.MembershipCreated
	// MembershipUpdated is event.MembershipUpdated: its data is an OrganizationMembership.
	MembershipUpdated = event.MembershipUpdated
	// MembershipDeleted is event.MembershipDeleted: its data is the deleted
	// OrganizationMembership.
	MembershipDeleted = event.MembershipDeleted
)

// HandledEvents returns event.Handled(): a new slice of the events the functions handle.
func HandledEvents() []string { return event.Handled() }

// IsEventType returns event.IsType(t).
func IsEventType(t string) bool { return event.IsType(t) }

// EventName returns event.Name(clerkType). It cannot fail.
func EventName(clerkType string) string { return event.Name(clerkType) }

// EventID returns event.ID(svixID). It cannot fail.
func EventID(svixID string) string { return event.ID(svixID) }

// SvixID returns event.SvixID(eventID). It cannot fail.
func SvixID(eventID string) string { return event.SvixID(eventID) }
