package clerk_test

import (
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"testing"

	"clerksync/clerk"
	"clerksync/clerk/clerkfake"
)

// testKey is the secret key the Clerk stand-in expects.
const testKey = "sk_test_clerk"

// newAPI returns the real client, pointed at the stand-in, logging to the test's output.
func newAPI(t *testing.T, fake *clerkfake.Server, cfg clerk.APIConfig) *clerk.API {
	cfg.SecretKey, cfg.APIURL = fake.Key, fake.URL
	return clerk.NewAPI(cfg, slog.New(slog.NewTextHandler(t.Output(), nil)))
}

func TestInstanceID(t *testing.T) {
	t.Parallel()
	const foreignInstance = "ins_foreign2kXcLeRkOtHeR0002"
	fake := clerkfake.New(t, testKey)
	api := newAPI(t, fake, clerk.APIConfig{})
	if got, err := api.InstanceID(t.Context()); got != clerkfake.DefaultInstance || err != nil {
		t.Errorf("InstanceID of a new stand-in = %q, %v; want %q", got, err, clerkfake.DefaultInstance)
	}
	tests := []struct {
		name   string
		keyIDs []string // the kid of each key of the set
		want   string   // "": an error
	}{
		{"one key", []string{foreignInstance}, foreignInstance},
		{"two keys of one instance", []string{"ins_a", "ins_a"}, "ins_a"},
		{"no key", nil, ""},
		{"keys of two instances", []string{"ins_a", "ins_b"}, ""},
	}
	for _, tt := range tests {
		fake.SetKeyIDs(tt.keyIDs...)
		got, err := api.InstanceID(t.Context())
		if got != tt.want || (err == nil) != (tt.want != "") {
			t.Errorf("%s: InstanceID = %q, %v; want %q", tt.name, got, err, tt.want)
		}
		if err != nil && !strings.Contains(err.Error(), "CLERK_API_URL") {
			t.Errorf("%s: InstanceID error %q does not say what to check", tt.name, err)
		}
	}
	wrongKey := clerk.NewAPI(clerk.APIConfig{SecretKey: "sk_test_wrong", APIURL: fake.URL}, slog.New(slog.NewTextHandler(t.Output(), nil)))
	if got, err := wrongKey.InstanceID(t.Context()); err == nil || !strings.Contains(err.Error(), "authentication_invalid") {
		t.Errorf("InstanceID with a wrong key = %q, %v; want Clerk's authentication error", got, err)
	}
}

// TestUsers: the client maps the Backend API's users to the same User a webhook carries, and
// tells a missing user apart.
func TestUsers(t *testing.T) {
	t.Parallel()
	fake := clerkfake.New(t, testKey,
		clerkfake.User{ID: "user_1", FirstName: "Ada", Email: "ada@example.com", ImageURL: "https://img.clerk.com/1", CreatedAt: 500, UpdatedAt: 700},
		clerkfake.User{ID: "user_2", Username: "bob", CreatedAt: 600, UpdatedAt: 800},
	)
	api := newAPI(t, fake, clerk.APIConfig{})
	ada := clerk.User{ID: "user_1", FirstName: ptr("Ada"), ImageURL: ptr("https://img.clerk.com/1"), PrimaryEmailAddressID: ptr("idn_1"),
		EmailAddresses: []clerk.EmailAddress{{ID: "idn_1", EmailAddress: "ada@example.com"}}, CreatedAt: 500, UpdatedAt: 700}
	bob := clerk.User{ID: "user_2", Username: ptr("bob"), ImageURL: ptr(""), CreatedAt: 600, UpdatedAt: 800}

	before := len(fake.Requests())
	page, err := api.ListUsers(t.Context(), 1, 1)
	if want := (clerk.UserPage{Users: []clerk.User{bob}}); err != nil || !reflect.DeepEqual(page, want) {
		t.Errorf("ListUsers(1, 1) = %+v, %v; want %+v", page, err, want)
	}
	// One request a page: the SDK's user.List would count the users too.
	if reqs := fake.Requests()[before:]; len(reqs) != 1 || !strings.HasPrefix(reqs[0], "GET /v1/users?") {
		t.Errorf("ListUsers(1, 1) sent %q; want one GET /v1/users", reqs)
	}
	if n, err := api.CountUsers(t.Context()); n != 2 || err != nil {
		t.Errorf("CountUsers = %d, %v; want 2", n, err)
	}
	if got, err := api.GetUser(t.Context(), "user_1"); err != nil || !reflect.DeepEqual(got, ada) {
		t.Errorf("GetUser(user_1) = %+v, %v; want %+v", got, err, ada)
	}
	if got, err := api.GetUser(t.Context(), "user_gone"); !errors.Is(err, clerk.ErrUserNotFound) {
		t.Errorf("GetUser(user_gone) = %+v, %v; want an error wrapping ErrUserNotFound", got, err)
	}
	if got, err := api.GetUser(t.Context(), " "); err == nil || errors.Is(err, clerk.ErrUserNotFound) {
		t.Errorf("GetUser(blank) = %+v, %v; want an error, not ErrUserNotFound", got, err)
	}
}

// TestGetUserEscapesID: an id reaches Clerk as one escaped path segment, so that nothing in it
// becomes a query, a fragment or another path; "." and ".." are refused before any request.
func TestGetUserEscapesID(t *testing.T) {
	t.Parallel()
	ids := []string{"user_abc?expand=x", "user_abc#frag", "user_abc/../../jwks", "user_a%3Fb"}
	var users []clerkfake.User
	for _, id := range ids {
		users = append(users, clerkfake.NewUser(id, "Odd", 700))
	}
	users = append(users, clerkfake.NewUser("user_abc", "Plain", 700))
	fake := clerkfake.New(t, testKey, users...)
	api := newAPI(t, fake, clerk.APIConfig{})
	wantPaths := map[string]string{
		"user_abc?expand=x":   "GET /v1/users/user_abc%3Fexpand=x",
		"user_abc#frag":       "GET /v1/users/user_abc%23frag",
		"user_abc/../../jwks": "GET /v1/users/user_abc%2F..%2F..%2Fjwks",
		"user_a%3Fb":          "GET /v1/users/user_a%253Fb",
	}
	for _, id := range ids {
		before := len(fake.Requests())
		got, err := api.GetUser(t.Context(), id)
		if err != nil || got.ID != id {
			t.Errorf("GetUser(%q) = %q, %v; want the user %q", id, got.ID, err, id)
		}
		if reqs := fake.Requests()[before:]; len(reqs) != 1 || reqs[0] != wantPaths[id] {
			t.Errorf("GetUser(%q) sent %q; want [%q]", id, reqs, wantPaths[id])
		}
	}
	for _, id := range []string{".", ".."} {
		before := len(fake.Requests())
		if got, err := api.GetUser(t.Context(), id); err == nil {
			t.Errorf("GetUser(%q) = %+v, nil; want an error", id, got)
		}
		if reqs := fake.Requests()[before:]; len(reqs) != 0 {
			t.Errorf("GetUser(%q) sent %q; want no request", id, reqs)
		}
	}
}

// TestGetUserOtherUser: an answer that carries another id than asked is an error wrapping
// ErrOtherUser, never that other user.
func TestGetUserOtherUser(t *testing.T) {
	t.Parallel()
	fake := clerkfake.New(t, testKey, clerkfake.NewUser("user_asked", "Asked", 700), clerkfake.NewUser("user_other", "Other", 700))
	fake.AnswerAs("user_asked", "user_other")
	api := newAPI(t, fake, clerk.APIConfig{})
	if got, err := api.GetUser(t.Context(), "user_asked"); !errors.Is(err, clerk.ErrOtherUser) || got.ID != "" {
		t.Errorf("GetUser(user_asked) answered with user_other = %+v, %v; want an error wrapping ErrOtherUser", got, err)
	}
}

// TestKeyRefused: Clerk's 401 (a wrong or revoked secret key) is an error wrapping
// ErrKeyRefused on every endpoint, and still carries Clerk's own error.
func TestKeyRefused(t *testing.T) {
	t.Parallel()
	fake := clerkfake.New(t, testKey, clerkfake.NewUser("user_1", "Ada", 700))
	api := clerk.NewAPI(clerk.APIConfig{SecretKey: "sk_test_revoked", APIURL: fake.URL}, slog.New(slog.NewTextHandler(t.Output(), nil)))
	calls := map[string]func() error{
		"InstanceID":        func() error { _, err := api.InstanceID(t.Context()); return err },
		"GetUser":           func() error { _, err := api.GetUser(t.Context(), "user_1"); return err },
		"ListUsers":         func() error { _, err := api.ListUsers(t.Context(), 10, 0); return err },
		"ListOrganizations": func() error { _, err := api.ListOrganizations(t.Context(), 10, 0); return err },
	}
	for name, call := range calls {
		err := call()
		if !errors.Is(err, clerk.ErrKeyRefused) || !strings.Contains(fmt.Sprint(err), "authentication_invalid") {
			t.Errorf("%s with a refused key: %v; want an error wrapping ErrKeyRefused with Clerk's authentication_invalid", name, err)
		}
		if errors.Is(err, clerk.ErrUserNotFound) {
			t.Errorf("%s with a refused key: %v; must not wrap ErrUserNotFound", name, err)
		}
	}
	good := newAPI(t, fake, clerk.APIConfig{})
	if _, err := good.GetUser(t.Context(), "user_none"); errors.Is(err, clerk.ErrKeyRefused) {
		t.Errorf("GetUser(user_none) with the right key: %v; want no ErrKeyRefused for a 404", err)
	}
}
