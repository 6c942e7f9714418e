package clerkfake

import (
	"context"
	"fmt"

	"clerksync/clerk"
	"clerksync/store"
)

// NewUser returns a user with the given id, first name and updated_at, and the rest filled in:
// last name Doe, the email <id>@example.com, a picture, created_at 500.
func NewUser(id, first string, updatedAt int64) User {
	return User{
		ID:        id,
		FirstName: first,
		LastName:  "Doe",
		Email:     id + "@example.com",
		ImageURL:  "https://img.clerk.com/" + id,
		CreatedAt: 500,
		UpdatedAt: updatedAt,
	}
}

// Clerk returns the Clerk user object a webhook would carry for u.
func (u User) Clerk() clerk.User {
	c := clerk.User{ID: u.ID, CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt}
	for _, p := range []struct {
		dst **string
		v   string
	}{{&c.FirstName, u.FirstName}, {&c.LastName, u.LastName}, {&c.Username, u.Username}, {&c.ImageURL, u.ImageURL}} {
		if p.v != "" {
			v := p.v
			*p.dst = &v
		}
	}
	if u.Email != "" {
		id := "idn_" + u.ID
		c.PrimaryEmailAddressID = &id
		c.EmailAddresses = []clerk.EmailAddress{{ID: id, EmailAddress: u.Email}}
	}
	return c
}

// Seed writes users to st as the webhook functions would, so that a test starts from a
// database that already follows Clerk. It returns the first mapping or database error.
func Seed(ctx context.Context, st *store.Store, users ...User) error {
	for _, u := range users {
		su, err := u.Clerk().StoreUser(0)
		if err != nil {
			return fmt.Errorf("seed %s: %w", u.ID, err)
		}
		if _, err := st.UpsertUser(ctx, su); err != nil {
			return fmt.Errorf("seed %s: %w", u.ID, err)
		}
	}
	return nil
}
