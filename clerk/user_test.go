package clerk_test

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"testing"

	"clerksync/clerk"
	"clerksync/store"
)

// ptr returns a pointer to v.
func ptr[T any](v T) *T { return &v }

// show formats a user for failure messages, with the email dereferenced.
func show(u store.User) string {
	email := "<nil>"
	if u.Email != nil {
		email = fmt.Sprintf("%q", *u.Email)
	}
	return fmt.Sprintf("{ID:%s Email:%s FullName:%q ProfilePicture:%q Username:%q ClerkUsername:%q CreatedAt:%d UpdatedAt:%d Deleted:%t DeletedAt:%d}",
		u.ID, email, u.FullName, u.ProfilePicture, u.Username, u.ClerkUsername, u.CreatedAt, u.UpdatedAt, u.Deleted, u.DeletedAt)
}

// jane is a complete Clerk user whose primary email is not the first address.
func jane() clerk.User {
	return clerk.User{
		ID:                    "user_2abcDEF",
		FirstName:             ptr("Jane"),
		LastName:              ptr("Doe"),
		Username:              ptr("janed"),
		ImageURL:              ptr("https://img.example/jane"),
		PrimaryEmailAddressID: ptr("idn_2"),
		EmailAddresses: []clerk.EmailAddress{
			{ID: "idn_1", EmailAddress: "old@x.org"},
			{ID: "idn_2", EmailAddress: "jane@x.org"},
		},
		CreatedAt: 100,
		UpdatedAt: 200,
	}
}

// janeWith returns jane changed by edit.
func janeWith(edit func(u *clerk.User)) clerk.User {
	u := jane()
	edit(&u)
	return u
}

// janeStored is what jane maps to, changed by edit.
func janeStored(edit func(u *store.User)) store.User {
	u := store.User{
		ID:             "user_2abcDEF",
		Email:          ptr("jane@x.org"),
		FullName:       "Jane Doe",
		ProfilePicture: "https://img.example/jane",
		Username:       "jane",
		ClerkUsername:  "janed",
		CreatedAt:      100,
		UpdatedAt:      200,
	}
	edit(&u)
	return u
}

// derived marks a user without a Clerk username, whose derived username is name.
func derived(name string) func(u *store.User) {
	return func(u *store.User) { u.Username, u.ClerkUsername = name, "" }
}

// usernameChars is what a derived username may consist of.
var usernameChars = regexp.MustCompile(`^[a-z0-9._-]+$`)

func TestStoreUser(t *testing.T) {
	t.Parallel()
	noUsername := func(u *clerk.User) { u.Username = nil }
	tests := []struct {
		name string
		in   clerk.User
		ts   int64
		want store.User
		// usernameRE, when set, replaces the exact check of want.Username.
		usernameRE *regexp.Regexp
	}{{
		name: "all fields, primary email second",
		in:   jane(), ts: 999,
		want: janeStored(func(*store.User) {}),
	}, {
		name: "no primary email id",
		in:   janeWith(func(u *clerk.User) { noUsername(u); u.PrimaryEmailAddressID = nil }),
		want: janeStored(func(u *store.User) { u.Email = nil; u.ClerkUsername = "" }),
		// derived from the id
		usernameRE: regexp.MustCompile(`^user[a-z0-9._-]*$`),
	}, {
		name: "primary email id matches no address",
		in:   janeWith(func(u *clerk.User) { u.PrimaryEmailAddressID = ptr("idn_9") }),
		want: janeStored(func(u *store.User) { u.Email, u.Username = nil, "user_2abcdef" }),
	}, {
		name: "primary email id but no addresses",
		in:   janeWith(func(u *clerk.User) { u.EmailAddresses = nil }),
		want: janeStored(func(u *store.User) { u.Email, u.Username = nil, "user_2abcdef" }),
	}, {
		name: "null last name",
		in:   janeWith(func(u *clerk.User) { u.LastName = nil }),
		want: janeStored(func(u *store.User) { u.FullName = "Jane" }),
	}, {
		name: "null first name",
		in:   janeWith(func(u *clerk.User) { u.FirstName = nil }),
		want: janeStored(func(u *store.User) { u.FullName = "Doe" }),
	}, {
		name: "null first and last name",
		in:   janeWith(func(u *clerk.User) { u.FirstName, u.LastName = nil, nil }),
		want: janeStored(func(u *store.User) { u.FullName = "" }),
	}, {
		name: "whitespace-only names",
		in:   janeWith(func(u *clerk.User) { u.FirstName, u.LastName = ptr("  "), ptr("\t ") }),
		want: janeStored(func(u *store.User) { u.FullName = "" }),
	}, {
		name: "whitespace-only last name",
		in:   janeWith(func(u *clerk.User) { u.LastName = ptr(" ") }),
		want: janeStored(func(u *store.User) { u.FullName = "Jane" }),
	}, {
		name: "padded names",
		in:   janeWith(func(u *clerk.User) { u.FirstName, u.LastName = ptr(" Jane "), ptr("  Doe") }),
		want: janeStored(func(*store.User) {}),
	}, {
		name: "null image",
		in:   janeWith(func(u *clerk.User) { u.ImageURL = nil }),
		want: janeStored(func(u *store.User) { u.ProfilePicture = "" }),
	}, {
		name: "clerk username kept exactly",
		in: janeWith(func(u *clerk.User) {
			u.Username = ptr("John.Doe_with_a_username_much_longer_than_forty_eight_bytes")
		}),
		want: janeStored(func(u *store.User) { u.ClerkUsername = "John.Doe_with_a_username_much_longer_than_forty_eight_bytes" }),
	}, {
		name: "no clerk username: email local part",
		in:   janeWith(noUsername),
		want: janeStored(derived("jane")),
	}, {
		name: "blank clerk username: email local part",
		in:   janeWith(func(u *clerk.User) { u.Username = ptr("  ") }),
		want: janeStored(derived("jane")),
	}, {
		name: "email local part lowercased",
		in: janeWith(func(u *clerk.User) {
			noUsername(u)
			u.EmailAddresses = []clerk.EmailAddress{{ID: "idn_2", EmailAddress: "JANE@X.org"}}
		}),
		want: janeStored(func(u *store.User) { derived("jane")(u); u.Email = ptr("JANE@X.org") }),
	}, {
		name: "email local part sanitised",
		in: janeWith(func(u *clerk.User) {
			noUsername(u)
			u.EmailAddresses = []clerk.EmailAddress{{ID: "idn_2", EmailAddress: "Jane.Doe+tag@x.org"}}
		}),
		want:       janeStored(func(u *store.User) { u.Email = ptr("Jane.Doe+tag@x.org"); u.ClerkUsername = "" }),
		usernameRE: regexp.MustCompile(`^jane`),
	}, {
		name: "email local part without usable characters: from the id",
		in: janeWith(func(u *clerk.User) {
			noUsername(u)
			u.EmailAddresses = []clerk.EmailAddress{{ID: "idn_2", EmailAddress: "日本@x.org"}}
		}),
		want:       janeStored(func(u *store.User) { u.Email = ptr("日本@x.org"); u.ClerkUsername = "" }),
		usernameRE: regexp.MustCompile(`^user`),
	}, {
		name: "no updated_at: event ts",
		in:   janeWith(func(u *clerk.User) { u.UpdatedAt = 0 }), ts: 999,
		want: janeStored(func(u *store.User) { u.UpdatedAt = 999 }),
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.in.StoreUser(tc.ts)
			if err != nil {
				t.Fatalf("StoreUser(%s) = %v; want no error", tc.in.ID, err)
			}
			want := tc.want
			if tc.usernameRE != nil {
				if !tc.usernameRE.MatchString(got.Username) || !usernameChars.MatchString(got.Username) {
					t.Errorf("StoreUser(%s) username = %q; want lowercase [a-z0-9._-] matching %s", tc.in.ID, got.Username, tc.usernameRE)
				}
				want.Username = got.Username
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("StoreUser(%s) = %s\nwant %s", tc.in.ID, show(got), show(want))
			}
		})
	}
}

func TestStoreUserUnusable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   clerk.User
		ts   int64
	}{
		{"no id", janeWith(func(u *clerk.User) { u.ID = "" }), 999},
		{"blank id", janeWith(func(u *clerk.User) { u.ID = " \t" }), 999},
		{"no updated_at and no event ts", janeWith(func(u *clerk.User) { u.UpdatedAt = 0 }), 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.in.StoreUser(tc.ts)
			if !errors.Is(err, clerk.ErrBadUser) {
				t.Errorf("StoreUser(%q, %d) = %s, %v; want ErrBadUser", tc.in.ID, tc.ts, show(got), err)
			}
		})
	}
}
