package clerk

import (
	"context"
	"fmt"
)

// ListUsersUpdated returns the users from offset on, at most limit (1 to MaxPageSize) of them,
// most recently updated first (order_by=-updated_at, one of the orders Clerk's GET /v1/users
// documents: created_at, updated_at, ... prefixed with + or -). An incremental reconciliation
// reads it until a page's oldest user is older than what it has seen. A user updated while the
// list is paged moves to its front, so a later page may repeat one already read (never skip
// one, unless users are deleted meanwhile). It returns an error wrapping ErrRateLimited when
// Clerk keeps answering 429, and Clerk's or the network's error otherwise.
func (c *API) ListUsersUpdated(ctx context.Context, limit, offset int) (UserPage, error) {
	page, err := c.listUsers(ctx, "-updated_at", limit, offset)
	if err != nil {
		return UserPage{}, fmt.Errorf("list Clerk users by updated_at (limit %d, offset %d): %w", limit, offset, err)
	}
	return page, nil
}
