package clerk

import (
	"errors"
	"fmt"
	"strings"

	"clerksync/store"
)

// Organization is the part of Clerk's Organization object that the service keeps, as the data
// of organization.created and organization.updated carries it (by the same JSON names). A null
// string (a slug when the instance has slugs turned off, for example) reads as "".
type Organization struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Slug      string `json:"slug"`
	ImageURL  string `json:"image_url"`
	CreatedBy string `json:"created_by"`
	CreatedAt int64  `json:"created_at"`
	UpdatedAt int64  `json:"updated_at"`
}

// DeletedOrganization is the data of organization.deleted: Clerk sends only the id, the slug
// and deleted (true), no updated_at.
type DeletedOrganization struct {
	ID      string `json:"id"`
	Slug    string `json:"slug"`
	Deleted bool   `json:"deleted"`
}

// OrganizationMembership is the part of Clerk's OrganizationMembership object that the service
// keeps, as the data of organizationMembership.created, .updated and .deleted carries it. Of
// the embedded organization and public_user_data only the ids are read: the user's name,
// picture and identifier (email) are personal data the membership does not copy.
type OrganizationMembership struct {
	ID             string                 `json:"id"`
	Role           string                 `json:"role"`
	Organization   MembershipOrganization `json:"organization"`
	PublicUserData PublicUserData         `json:"public_user_data"`
	CreatedAt      int64                  `json:"created_at"`
	UpdatedAt      int64                  `json:"updated_at"`
}

// MembershipOrganization is the organization a membership belongs to, as the membership's
// organization object carries it; only its id is read.
type MembershipOrganization struct {
	ID string `json:"id"`
}

// PublicUserData is the member as a membership's public_user_data carries it; only the user id
// is read.
type PublicUserData struct {
	UserID string `json:"user_id"`
}

// Errors of the organization and membership mappings: retrying the same event cannot help.
var (
	// ErrBadOrganization means the event's organization cannot be stored (no id, no
	// updated_at).
	ErrBadOrganization = errors.New("event data is not a usable Clerk organization")
	// ErrBadMembership means the event's membership cannot be stored (no id, no organization
	// id, no user id, no updated_at).
	ErrBadMembership = errors.New("event data is not a usable Clerk organization membership")
)

// StoreOrganization maps Clerk's organization to the stored one. eventTS (Unix milliseconds,
// the event's ts; 0 outside an event) stands in for updated_at when Clerk's data lacks it, as
// for users. The id is trimmed; the other fields are kept as Clerk sends them. It returns an
// error wrapping ErrBadOrganization when o has no id, or neither updated_at nor eventTS is set.
func (o Organization) StoreOrganization(eventTS int64) (store.Organization, error) {
	id := strings.TrimSpace(o.ID)
	if id == "" {
		return store.Organization{}, fmt.Errorf("%w: data.id is missing", ErrBadOrganization)
	}
	updated := o.UpdatedAt
	if updated <= 0 {
		updated = eventTS
	}
	if updated <= 0 {
		return store.Organization{}, fmt.Errorf("%w: organization %s has no data.updated_at and the event no ts", ErrBadOrganization, id)
	}
	return store.Organization{
		ID:        id,
		Name:      o.Name,
		Slug:      o.Slug,
		ImageURL:  o.ImageURL,
		CreatedBy: o.CreatedBy,
		CreatedAt: o.CreatedAt,
		UpdatedAt: updated,
	}, nil
}

// OrganizationID returns the deleted organization's id, trimmed. It returns an error wrapping
// ErrBadOrganization when there is none.
func (d DeletedOrganization) OrganizationID() (string, error) {
	id := strings.TrimSpace(d.ID)
	if id == "" {
		return "", fmt.Errorf("%w: data.id is missing", ErrBadOrganization)
	}
	return id, nil
}

// StoreMembership maps Clerk's membership to the stored one: its id, the organization's and the
// user's ids (trimmed), the role, and the timestamps; nothing of public_user_data but the user
// id. eventTS stands in for updated_at as in StoreOrganization. It returns an error wrapping
// ErrBadMembership when m has no id, no organization.id, no public_user_data.user_id, or
// neither updated_at nor eventTS is set.
func (m OrganizationMembership) StoreMembership(eventTS int64) (store.Membership, error) {
	id, err := m.MembershipID()
	if err != nil {
		return store.Membership{}, err
	}
	orgID := strings.TrimSpace(m.Organization.ID)
	if orgID == "" {
		return store.Membership{}, fmt.Errorf("%w: membership %s has no data.organization.id", ErrBadMembership, id)
	}
	userID := strings.TrimSpace(m.PublicUserData.UserID)
	if userID == "" {
		return store.Membership{}, fmt.Errorf("%w: membership %s has no data.public_user_data.user_id", ErrBadMembership, id)
	}
	updated := m.UpdatedAt
	if updated <= 0 {
		updated = eventTS
	}
	if updated <= 0 {
		return store.Membership{}, fmt.Errorf("%w: membership %s has no data.updated_at and the event no ts", ErrBadMembership, id)
	}
	return store.Membership{
		ID:        id,
		OrgID:     orgID,
		UserID:    userID,
		Role:      m.Role,
		CreatedAt: m.CreatedAt,
		UpdatedAt: updated,
	}, nil
}

// MembershipID returns the membership's id, trimmed: all that organizationMembership.deleted
// needs. It returns an error wrapping ErrBadMembership when there is none.
func (m OrganizationMembership) MembershipID() (string, error) {
	id := strings.TrimSpace(m.ID)
	if id == "" {
		return "", fmt.Errorf("%w: data.id is missing", ErrBadMembership)
	}
	return id, nil
}
