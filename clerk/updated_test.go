package clerk_test

import (
	"slices"
	"testing"

	"clerksync/clerk"
	"clerksync/clerk/clerkfake"
)

// TestListUsersUpdated: the client asks for order_by=-updated_at and gets the users most
// recently updated first, page by page.
func TestListUsersUpdated(t *testing.T) {
	t.Parallel()
	fake := clerkfake.New(t, testKey,
		clerkfake.NewUser("user_a", "A", 300), clerkfake.NewUser("user_b", "B", 100), clerkfake.NewUser("user_c", "C", 200))
	api := newAPI(t, fake, clerk.APIConfig{})
	var got []string
	for offset := 0; offset < 3; offset += 2 {
		page, err := api.ListUsersUpdated(t.Context(), 2, offset)
		if err != nil {
			t.Fatalf("ListUsersUpdated(2, %d) = %+v, %v; want no error", offset, page, err)
		}
		for _, u := range page.Users {
			got = append(got, u.ID)
		}
	}
	if want := []string{"user_a", "user_c", "user_b"}; !slices.Equal(got, want) {
		t.Errorf("ListUsersUpdated pages = %q; want %q", got, want)
	}
	if reqs := fake.Requests(); !slices.Contains(reqs, "GET /v1/users?limit=2&offset=0&order_by=-updated_at") {
		t.Errorf("requests = %q; want GET /v1/users?limit=2&offset=0&order_by=-updated_at", reqs)
	}
}
