package clerk

import (
	"context"
	"fmt"

	sdk "github.com/clerk/clerk-sdk-go/v2"
	"github.com/clerk/clerk-sdk-go/v2/user"
)

// ListUsersUpdated returns the users from offset on, at most limit (1 to MaxPageSize) of them,
// most recently updated first (order_by=-updated_at, one of the orders Clerk's GET /v1/users
// documents: created_at, updated_at, ... prefixed with + or -). An incremental reconciliation
// reads it until a page's oldest user is older than what it has seen. A user updated while the
// list is paged moves to its front, so a later page may repeat one already read (never skip
// one, unless users are deleted meanwhile). It returns an error wrapping ErrRateLimited when
// Clerk keeps answering 429, and Clerk's or the network's error otherwise.
func (c *API) ListUsersUpdated(ctx context.Context, limit, offset int) (UserPage, error) {
	params := &user.ListParams{OrderBy: sdk.String("-updated_at")}
	params.Limit = sdk.Int64(int64(limit))
	params.Offset = sdk.Int64(int64(offset))
	var list *sdk.UserList
	err := c.retry(ctx, fmt.Sprintf("GET /users?order_by=-updated_at&offset=%d", offset), func() error {
		var err error
		list, err = c.users.List(ctx, params)
		return err
	})
	if err != nil {
		return UserPage{}, fmt.Errorf("list Clerk users by updated_at (limit %d, offset %d): %w", limit, offset, err)
	}
	page := UserPage{Total: list.TotalCount, Users: make([]User, 0, len(list.Users))}
	for _, u := range list.Users {
		if u != nil {
			page.Users = append(page.Users, fromSDK(u))
		}
	}
	return page, nil
}
