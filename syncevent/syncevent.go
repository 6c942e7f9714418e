// Package syncevent is the contract of the events the service emits after it applies a change
// to the database: their names (UserCreated, ..., MembershipDeleted, or Name), their data
// (Data) and their ids (ID). A workflow triggered by one of them finds the change in the
// database: the event is sent only after the write, and only for a change that was applied (not
// for a stale, duplicate or refused one). The ids are deterministic, built from what identifies
// the version applied, so that a retry sends the same event again and Inngest drops the copy
// (Inngest drops an event whose id it has seen in the last 24 hours). It imports only the
// standard library, so that a workflow's code can copy or import it without the service's
// dependencies.
package syncevent

import (
	"strconv"
	"strings"
)

// NamePrefix is put before every event's name: the service's own events, as
// clerk-sync/reconcile.requested is, and not Clerk's (clerk/...).
const NamePrefix = "clerk-sync/"

// The objects the events are about, as Clerk names them in its event types.
const (
	// ObjectUser is a Clerk user, stored in the users collection.
	ObjectUser = "user"
	// ObjectOrganization is a Clerk organization, stored in the organizations collection.
	ObjectOrganization = "organization"
	// ObjectMembership is a Clerk organization membership, stored in the memberships
	// collection.
	ObjectMembership = "organizationMembership"
)

// The kinds of change (Data.Change), the last word of an event's name.
const (
	// Created: the object was inserted into the database (also when Clerk's update arrived
	// before its create: the event names what happened to the database).
	Created = "created"
	// Updated: a newer version of the object replaced the stored one.
	Updated = "updated"
	// Deleted: the object became a tombstone (see docs/users-collection.md).
	Deleted = "deleted"
)

// The names of the events, Name(object, kind).
const (
	// UserCreated is sent after a user was inserted: clerk-sync/user.created.
	UserCreated = NamePrefix + ObjectUser + "." + Created
	// UserUpdated is sent after a newer version of a user replaced the stored one.
	UserUpdated = NamePrefix + ObjectUser + "." + Updated
	// UserDeleted is sent after a user became a tombstone.
	UserDeleted = NamePrefix + ObjectUser + "." + Deleted

	// OrganizationCreated is sent after an organization was inserted.
	OrganizationCreated = NamePrefix + ObjectOrganization + "." + Created
	// OrganizationUpdated is sent after a newer version of an organization replaced the
	// stored one.
	OrganizationUpdated = NamePrefix + ObjectOrganization + "." + Updated
	// OrganizationDeleted is sent after an organization became a tombstone (its memberships
	// end with it, without events of their own).
	OrganizationDeleted = NamePrefix + ObjectOrganization + "." + Deleted

	// MembershipCreated is sent after a membership was inserted live.
	MembershipCreated = NamePrefix + ObjectMembership + "." + Created
	// MembershipUpdated is sent after a newer version of a membership replaced the stored one.
	MembershipUpdated = NamePrefix + ObjectMembership + "." + Updated
	// MembershipDeleted is sent after a membership became a tombstone by its own deletion.
	MembershipDeleted = NamePrefix + ObjectMembership + "." + Deleted
)

// Names returns the names of every event the service emits, UserCreated to MembershipDeleted.
// Each call returns a new slice.
func Names() []string {
	return []string{
		UserCreated, UserUpdated, UserDeleted,
		OrganizationCreated, OrganizationUpdated, OrganizationDeleted,
		MembershipCreated, MembershipUpdated, MembershipDeleted,
	}
}

// Name returns the name of the event of kind about object: clerk-sync/<object>.<kind>. It
// cannot fail.
func Name(object, kind string) string { return NamePrefix + object + "." + kind }

// IDPrefix is put before every event's id.
const IDPrefix = "clerk-sync-"

// ID returns the id of the event of kind about the object id whose version applied is at
// (Unix milliseconds: its updated_at; for a deletion, its deleted_at):
// clerk-sync-<object>.<kind>-<id>-<at>, such as
// clerk-sync-user.updated-user_2abc-1700000000000. The same change applied, retried or
// delivered twice, gets the same id. It cannot fail.
func ID(object, kind, id string, at int64) string {
	var b strings.Builder
	b.WriteString(IDPrefix)
	b.WriteString(object)
	b.WriteByte('.')
	b.WriteString(kind)
	b.WriteByte('-')
	b.WriteString(id)
	b.WriteByte('-')
	b.WriteString(strconv.FormatInt(at, 10))
	return b.String()
}

// Data is an event's data.
type Data struct {
	// ID is the Clerk id of the object (user_..., org_..., orgmem_...): the document's _id.
	ID string `json:"id"`
	// Change is the kind of change: Created, Updated or Deleted.
	Change string `json:"change"`
	// UpdatedAt is the updated_at of the version applied, in Unix milliseconds; for a
	// deletion, the deletion time (the tombstone's deleted_at).
	UpdatedAt int64 `json:"updated_at"`
	// ChangedFields are the names of the stored fields the change wrote with a new value (the
	// document's field names: email, full_name, username, ...; name, slug, ...; role, ...),
	// every field for a creation, none for a deletion. updated_at is never listed. Never nil.
	ChangedFields []string `json:"changed_fields"`
}

// Event is an event as Inngest's event API takes it (and the Inngest SDKs' Send).
type Event struct {
	// ID is ID(object, Data.Change, Data.ID, Data.UpdatedAt).
	ID string `json:"id"`
	// Name is Name(object, Data.Change).
	Name string `json:"name"`
	// Data is what changed.
	Data Data `json:"data"`
}

// New returns the event of kind about the object id whose version at was applied, having
// changed the stored fields changed (nil is sent as none). It cannot fail.
func New(object, kind, id string, at int64, changed []string) Event {
	if changed == nil {
		changed = []string{}
	}
	return Event{
		ID:   ID(object, kind, id, at),
		Name: Name(object, kind),
		Data: Data{ID: id, Change: kind, UpdatedAt: at, ChangedFields: changed},
	}
}
