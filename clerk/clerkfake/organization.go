package clerkfake

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"clerksync/clerk"
	"clerksync/store"
)

// Organization is one Clerk organization as the stand-in serves it. An empty Slug or ImageURL
// is served as null.
type Organization struct {
	ID                   string
	Name, Slug           string
	ImageURL             string
	CreatedBy            string // a user id
	CreatedAt, UpdatedAt int64  // Unix milliseconds
}

// Membership is one organization membership as the stand-in serves it: the user UserID's
// membership of the organization OrgID. Its public_user_data is filled from the stand-in's
// user with that id, when there is one.
type Membership struct {
	ID                   string
	OrgID, UserID        string
	Role                 string // such as org:admin
	CreatedAt, UpdatedAt int64  // Unix milliseconds
}

// NewOrganization returns an organization with the given id, name and updated_at, and the
// rest filled in: the slug <id without org_>, a picture, created_at 500.
func NewOrganization(id, name string, updatedAt int64) Organization {
	return Organization{
		ID:        id,
		Name:      name,
		Slug:      strings.TrimPrefix(id, "org_"),
		ImageURL:  "https://img.clerk.com/" + id,
		CreatedAt: 500,
		UpdatedAt: updatedAt,
	}
}

// MembershipID returns the id NewMembership gives the membership of the user userID in the
// organization orgID: orgmem_<org id without org_>_<user id without user_>.
func MembershipID(orgID, userID string) string {
	return "orgmem_" + strings.TrimPrefix(orgID, "org_") + "_" + strings.TrimPrefix(userID, "user_")
}

// NewMembership returns the membership of the user userID in the organization orgID, with the
// id MembershipID(orgID, userID), the given role and updated_at, and created_at 500.
func NewMembership(orgID, userID, role string, updatedAt int64) Membership {
	return Membership{ID: MembershipID(orgID, userID), OrgID: orgID, UserID: userID, Role: role, CreatedAt: 500, UpdatedAt: updatedAt}
}

// Clerk returns the Clerk organization object a webhook would carry for o.
func (o Organization) Clerk() clerk.Organization {
	return clerk.Organization{ID: o.ID, Name: o.Name, Slug: o.Slug, ImageURL: o.ImageURL, CreatedBy: o.CreatedBy, CreatedAt: o.CreatedAt, UpdatedAt: o.UpdatedAt}
}

// Clerk returns the Clerk membership object a webhook would carry for m.
func (m Membership) Clerk() clerk.OrganizationMembership {
	return clerk.OrganizationMembership{
		ID:             m.ID,
		Role:           m.Role,
		Organization:   clerk.MembershipOrganization{ID: m.OrgID},
		PublicUserData: clerk.PublicUserData{UserID: m.UserID},
		CreatedAt:      m.CreatedAt,
		UpdatedAt:      m.UpdatedAt,
	}
}

// SeedOrganizations writes orgs to st as the webhook functions would. It returns the first
// mapping or database error.
func SeedOrganizations(ctx context.Context, st *store.Store, orgs ...Organization) error {
	for _, o := range orgs {
		so, err := o.Clerk().StoreOrganization(0)
		if err != nil {
			return fmt.Errorf("seed %s: %w", o.ID, err)
		}
		if _, err := st.UpsertOrganization(ctx, so); err != nil {
			return fmt.Errorf("seed %s: %w", o.ID, err)
		}
	}
	return nil
}

// SeedMemberships writes members to st as the webhook functions would. It returns the first
// mapping or database error.
func SeedMemberships(ctx context.Context, st *store.Store, members ...Membership) error {
	for _, m := range members {
		sm, err := m.Clerk().StoreMembership(0)
		if err != nil {
			return fmt.Errorf("seed %s: %w", m.ID, err)
		}
		if _, err := st.UpsertMembership(ctx, sm); err != nil {
			return fmt.Errorf("seed %s: %w", m.ID, err)
		}
	}
	return nil
}

// PutOrganization adds o at the end of the organization list, or replaces the organization
// with o's id where it is.
func (s *Server) PutOrganization(o Organization) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i := s.orgIndex(o.ID); i >= 0 {
		s.orgs[i] = o
		return
	}
	s.orgs = append(s.orgs, o)
}

// RemoveOrganization deletes the organization with the given id and its memberships, as
// Clerk does, shifting the later ones one place back.
func (s *Server) RemoveOrganization(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i := s.orgIndex(id); i >= 0 {
		s.orgs = slices.Delete(s.orgs, i, i+1)
	}
	s.members = slices.DeleteFunc(s.members, func(m Membership) bool { return m.OrgID == id })
	delete(s.genMembers, id)
}

// GenerateOrganization puts o (as PutOrganization does) with m generated members: the
// memberships GeneratedMembership(o.ID, 0) to GeneratedMembership(o.ID, m-1), listed in that
// order after the memberships PutMembership added to o. They are computed when served, not
// stored, as Generate's users are: an organization of 50,000 members costs nothing until it is
// listed, and each page of its list only that page. Calling it again replaces the count;
// RemoveOrganization removes them with o. PutMembership and RemoveMembership do not see them.
func (s *Server) GenerateOrganization(o Organization, m int) {
	s.PutOrganization(o)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.genMembers == nil {
		s.genMembers = map[string]int{}
	}
	s.genMembers[o.ID] = max(m, 0)
}

// GeneratedMembership returns the generated membership j of the organization orgID (see
// GenerateOrganization): the membership of GeneratedUser(j), with the id MembershipID(orgID,
// GeneratedID(j)), the role org:admin for j 0 and org:member for the others, and the user's
// created_at and updated_at. It is the same on every call.
func GeneratedMembership(orgID string, j int) Membership {
	role := "org:member"
	if j == 0 {
		role = "org:admin"
	}
	m := NewMembership(orgID, GeneratedID(j), role, generatedUpdatedAt(j))
	m.CreatedAt = generatedEpoch + int64(j)*1000
	return m
}

// PutMembership adds m at the end of its organization's membership list, or replaces the
// membership with m's id where it is. The organization need not exist (yet).
func (s *Server) PutMembership(m Membership) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i := slices.IndexFunc(s.members, func(c Membership) bool { return c.ID == m.ID }); i >= 0 {
		s.members[i] = m
		return
	}
	s.members = append(s.members, m)
}

// RemoveMembership deletes the membership with the given id.
func (s *Server) RemoveMembership(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.members = slices.DeleteFunc(s.members, func(m Membership) bool { return m.ID == id })
}

// DisableOrganizations turns the organizations feature off: from now on every organization
// endpoint answers 403 with Clerk's organization_not_enabled_in_instance.
func (s *Server) DisableOrganizations() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.orgsDisabled = true
}

func (s *Server) orgIndex(id string) int {
	return slices.IndexFunc(s.orgs, func(o Organization) bool { return o.ID == id })
}

// serveOrganizations answers GET /v1/organizations, /v1/organizations/{id} and
// /v1/organizations/{id}/memberships.
func (s *Server) serveOrganizations(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	disabled := s.orgsDisabled
	s.mu.Unlock()
	if disabled {
		writeErrorMessage(w, http.StatusForbidden, "organization_not_enabled_in_instance", "access denied",
			"The organizations feature is not enabled for this instance. You can enable it at https://dashboard.clerk.com.")
		return
	}
	rest := strings.Trim(strings.TrimPrefix(r.URL.Path, "/v1/organizations"), "/")
	id, sub, _ := strings.Cut(rest, "/")
	switch {
	case rest == "":
		limit, offset, ok := s.listRange(w, r)
		if !ok {
			return
		}
		s.mu.Lock()
		page := []any{}
		for i := offset; i < len(s.orgs) && i < offset+limit; i++ {
			page = append(page, clerkOrganization(s.orgs[i]))
		}
		n := len(s.orgs)
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]any{"data": page, "total_count": n})
	case sub == "":
		s.mu.Lock()
		i := s.orgIndex(id)
		var o Organization
		if i >= 0 {
			o = s.orgs[i]
		}
		s.mu.Unlock()
		if i < 0 {
			writeError(w, http.StatusNotFound, "resource_not_found", "Organization not found")
			return
		}
		writeJSON(w, http.StatusOK, clerkOrganization(o))
	case sub == "memberships":
		s.serveMemberships(w, r, id)
	default:
		writeError(w, http.StatusNotFound, "resource_not_found", "not found")
	}
}

// serveMemberships answers GET /v1/organizations/{orgID}/memberships: the organization's
// memberships, only those of the users user_id names when it is given, or a 404 when there is
// no such organization.
func (s *Server) serveMemberships(w http.ResponseWriter, r *http.Request, orgID string) {
	s.mu.Lock()
	found := s.orgIndex(orgID) >= 0
	s.mu.Unlock()
	if !found {
		writeError(w, http.StatusNotFound, "resource_not_found", "Organization not found")
		return
	}
	limit, offset, ok := s.listRange(w, r)
	if !ok {
		return
	}
	users := r.URL.Query()["user_id"]
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.orgIndex(orgID)
	if i < 0 { // removed by the hook
		writeError(w, http.StatusNotFound, "resource_not_found", "Organization not found")
		return
	}
	org := s.orgs[i]
	var matching []Membership
	for _, m := range s.members {
		if m.OrgID == orgID && (len(users) == 0 || slices.Contains(users, m.UserID)) {
			matching = append(matching, m)
		}
	}
	// The generated members after the stored ones: all of them, or those users names.
	gen := s.genMembers[orgID]
	var genUsers []int
	if len(users) > 0 {
		for _, id := range users {
			if j, ok := generatedIndex(id); ok && j < gen && !slices.Contains(genUsers, j) {
				genUsers = append(genUsers, j)
			}
		}
		slices.Sort(genUsers)
		gen = len(genUsers)
	}
	total := len(matching) + gen
	page := []any{}
	for j := offset; j < total && j < offset+limit; j++ {
		var m Membership
		switch {
		case j < len(matching):
			m = matching[j]
		case genUsers != nil:
			m = GeneratedMembership(orgID, genUsers[j-len(matching)])
		default:
			m = GeneratedMembership(orgID, j-len(matching))
		}
		var u *User
		if found, ok := s.users.lookup(m.UserID); ok {
			u = &found
		}
		page = append(page, clerkMembership(m, org, u))
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": page, "total_count": total})
}

// clerkOrganization renders o as Clerk's Organization object.
func clerkOrganization(o Organization) map[string]any {
	return map[string]any{
		"object":                  "organization",
		"id":                      o.ID,
		"name":                    o.Name,
		"slug":                    null(o.Slug),
		"image_url":               null(o.ImageURL),
		"has_image":               o.ImageURL != "",
		"max_allowed_memberships": 5,
		"admin_delete_enabled":    true,
		"public_metadata":         map[string]any{},
		"private_metadata":        map[string]any{},
		"created_by":              o.CreatedBy,
		"created_at":              o.CreatedAt,
		"updated_at":              o.UpdatedAt,
	}
}

// clerkMembership renders m, of the organization org, as Clerk's OrganizationMembership
// object; its public_user_data comes from u (nil: a user the stand-in does not have).
func clerkMembership(m Membership, org Organization, u *User) map[string]any {
	public := map[string]any{
		"user_id":    m.UserID,
		"first_name": nil,
		"last_name":  nil,
		"image_url":  "",
		"has_image":  false,
		"identifier": "",
		"username":   nil,
	}
	if u != nil {
		public["first_name"], public["last_name"], public["username"] = null(u.FirstName), null(u.LastName), null(u.Username)
		public["image_url"], public["has_image"], public["identifier"] = u.ImageURL, u.ImageURL != "", u.Email
	}
	return map[string]any{
		"object":           "organization_membership",
		"id":               m.ID,
		"role":             m.Role,
		"role_name":        strings.TrimPrefix(m.Role, "org:"),
		"permissions":      []any{},
		"public_metadata":  map[string]any{},
		"private_metadata": map[string]any{},
		"organization":     clerkOrganization(org),
		"public_user_data": public,
		"created_at":       m.CreatedAt,
		"updated_at":       m.UpdatedAt,
	}
}

// null returns s, or nil (JSON null) for "".
func null(s string) any {
	if s == "" {
		return nil
	}
	return s
}
