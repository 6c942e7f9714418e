package clerk

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	sdk "github.com/clerk/clerk-sdk-go/v2"
	"github.com/clerk/clerk-sdk-go/v2/organization"
	"github.com/clerk/clerk-sdk-go/v2/organizationmembership"
)

// Errors of the organization endpoints.
var (
	// ErrOrganizationNotFound means Clerk answered 404 for the organization: it does not
	// exist (any more).
	ErrOrganizationNotFound = errors.New("clerk: organization not found")
	// ErrOrganizationsNotEnabled means the instance has the organizations feature turned off
	// (Clerk's error code organization_not_enabled_in_instance): it has no organization to
	// list. Turning it on is a Clerk Dashboard setting.
	ErrOrganizationsNotEnabled = errors.New("clerk: the organizations feature is not enabled in this Clerk instance")
)

// codeOrganizationsNotEnabled is the error code Clerk answers the organization endpoints with
// when the instance has organizations turned off.
const codeOrganizationsNotEnabled = "organization_not_enabled_in_instance"

// OrganizationPage is one page of Clerk's organization list.
type OrganizationPage struct {
	// Organizations are the page's organizations, mapped to the fields the service keeps.
	Organizations []Organization
	// Total is how many organizations Clerk has in all (its total_count).
	Total int64
}

// MembershipPage is one page of an organization's memberships.
type MembershipPage struct {
	// Memberships are the page's memberships, mapped to the fields the service keeps (ids,
	// role, timestamps).
	Memberships []OrganizationMembership
	// Total is how many memberships match in all (its total_count).
	Total int64
}

// ListOrganizations returns the organizations from offset on (GET /v1/organizations), at most
// limit (1 to MaxPageSize) of them, oldest first (order_by=+created_at, so that organizations
// created meanwhile land on later pages instead of shifting the earlier ones). It returns an
// error wrapping ErrOrganizationsNotEnabled when the instance has organizations turned off,
// one wrapping ErrRateLimited when Clerk keeps answering 429, and Clerk's or the network's
// error otherwise.
func (c *API) ListOrganizations(ctx context.Context, limit, offset int) (OrganizationPage, error) {
	params := &organization.ListParams{OrderBy: sdk.String("+created_at")}
	params.Limit = sdk.Int64(int64(limit))
	params.Offset = sdk.Int64(int64(offset))
	var list *sdk.OrganizationList
	err := c.retry(ctx, fmt.Sprintf("GET /organizations?offset=%d", offset), func() error {
		var err error
		list, err = c.orgs.List(ctx, params)
		return err
	})
	if err != nil {
		return OrganizationPage{}, fmt.Errorf("list Clerk organizations (limit %d, offset %d): %w", limit, offset, orgError(err))
	}
	page := OrganizationPage{Total: list.TotalCount, Organizations: make([]Organization, 0, len(list.Organizations))}
	for _, o := range list.Organizations {
		if o != nil {
			page.Organizations = append(page.Organizations, orgFromSDK(o))
		}
	}
	return page, nil
}

// GetOrganization returns the organization with the given id (GET /v1/organizations/{id}). It
// returns an error wrapping ErrOrganizationNotFound when Clerk answers 404, one wrapping
// ErrOrganizationsNotEnabled when the instance has organizations turned off, one wrapping
// ErrRateLimited when Clerk keeps answering 429, one for an empty id, and Clerk's or the
// network's error otherwise.
func (c *API) GetOrganization(ctx context.Context, id string) (Organization, error) {
	if strings.TrimSpace(id) == "" {
		return Organization{}, errors.New("get Clerk organization: empty organization id")
	}
	var o *sdk.Organization
	err := c.retry(ctx, "GET /organizations/"+id, func() error {
		var err error
		o, err = c.orgs.Get(ctx, id)
		return err
	})
	if err = orgError(err); err != nil {
		if errors.Is(err, ErrOrganizationNotFound) {
			return Organization{}, fmt.Errorf("%w: %s", ErrOrganizationNotFound, id)
		}
		return Organization{}, fmt.Errorf("get Clerk organization %s: %w", id, err)
	}
	return orgFromSDK(o), nil
}

// ListMemberships returns the memberships of the organization orgID from offset on (GET
// /v1/organizations/{id}/memberships), at most limit (1 to MaxPageSize) of them, oldest first;
// with userIDs (at most 100), only those of these users. It returns an error wrapping
// ErrOrganizationNotFound when Clerk answers 404 (no such organization), one wrapping
// ErrOrganizationsNotEnabled when the instance has organizations turned off, one wrapping
// ErrRateLimited when Clerk keeps answering 429, one for an empty id, and Clerk's or the
// network's error otherwise.
func (c *API) ListMemberships(ctx context.Context, orgID string, userIDs []string, limit, offset int) (MembershipPage, error) {
	if strings.TrimSpace(orgID) == "" {
		return MembershipPage{}, errors.New("list Clerk organization memberships: empty organization id")
	}
	params := &organizationmembership.ListParams{OrganizationID: orgID, OrderBy: sdk.String("+created_at")}
	if len(userIDs) > 0 {
		params.UserIDs = slices.Clone(userIDs)
	}
	params.Limit = sdk.Int64(int64(limit))
	params.Offset = sdk.Int64(int64(offset))
	var list *sdk.OrganizationMembershipList
	err := c.retry(ctx, fmt.Sprintf("GET /organizations/%s/memberships?offset=%d", orgID, offset), func() error {
		var err error
		list, err = c.members.List(ctx, params)
		return err
	})
	if err = orgError(err); err != nil {
		if errors.Is(err, ErrOrganizationNotFound) {
			return MembershipPage{}, fmt.Errorf("list the memberships of Clerk organization %s: %w", orgID, err)
		}
		return MembershipPage{}, fmt.Errorf("list the memberships of Clerk organization %s (limit %d, offset %d): %w", orgID, limit, offset, err)
	}
	page := MembershipPage{Total: list.TotalCount, Memberships: make([]OrganizationMembership, 0, len(list.OrganizationMemberships))}
	for _, m := range list.OrganizationMemberships {
		if m != nil {
			page.Memberships = append(page.Memberships, membershipFromSDK(m))
		}
	}
	return page, nil
}

// orgError returns err of an organization endpoint with the sentinel it stands for added: a
// 404 wraps ErrOrganizationNotFound, Clerk's organization_not_enabled_in_instance wraps
// ErrOrganizationsNotEnabled; any other error (nil included) is returned unchanged.
func orgError(err error) error {
	var apiErr *sdk.APIErrorResponse
	if !errors.As(err, &apiErr) {
		return err
	}
	for _, e := range apiErr.Errors {
		if e.Code == codeOrganizationsNotEnabled {
			return fmt.Errorf("%w: %w", ErrOrganizationsNotEnabled, err)
		}
	}
	if apiErr.HTTPStatusCode == http.StatusNotFound {
		return fmt.Errorf("%w: %w", ErrOrganizationNotFound, err)
	}
	return err
}

// orgFromSDK maps the SDK's organization to the fields the service keeps (the same fields, by
// the same JSON names, as the webhook's data).
func orgFromSDK(o *sdk.Organization) Organization {
	c := Organization{
		ID:        o.ID,
		Name:      o.Name,
		Slug:      o.Slug,
		CreatedBy: o.CreatedBy,
		CreatedAt: o.CreatedAt,
		UpdatedAt: o.UpdatedAt,
	}
	if o.ImageURL != nil {
		c.ImageURL = *o.ImageURL
	}
	return c
}

// membershipFromSDK maps the SDK's membership to the fields the service keeps: of its
// organization and public_user_data only the ids, as from a webhook.
func membershipFromSDK(m *sdk.OrganizationMembership) OrganizationMembership {
	c := OrganizationMembership{ID: m.ID, Role: m.Role, CreatedAt: m.CreatedAt, UpdatedAt: m.UpdatedAt}
	if m.Organization != nil {
		c.Organization.ID = m.Organization.ID
	}
	if m.PublicUserData != nil {
		c.PublicUserData.UserID = m.PublicUserData.UserID
	}
	return c
}
