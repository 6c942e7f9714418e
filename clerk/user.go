package clerk

import (
	"errors"
	"fmt"
	"strings"

	"clerksync/store"
)

// User is the part of Clerk's User object that the service keeps, as the data of user.created
// and user.updated and the Backend API's users carry it (by the same JSON names). Nullable
// fields are pointers.
type User struct {
	ID                    string         `json:"id"`
	FirstName             *string        `json:"first_name"`
	LastName              *string        `json:"last_name"`
	Username              *string        `json:"username"`
	ImageURL              *string        `json:"image_url"`
	PrimaryEmailAddressID *string        `json:"primary_email_address_id"`
	EmailAddresses        []EmailAddress `json:"email_addresses"`
	CreatedAt             int64          `json:"created_at"`
	UpdatedAt             int64          `json:"updated_at"`
}

// EmailAddress is one entry of a Clerk user's email_addresses.
type EmailAddress struct {
	ID           string `json:"id"`
	EmailAddress string `json:"email_address"`
}

// DeletedObject is Clerk's DeletedObject, the data of user.deleted.
type DeletedObject struct {
	ID      string `json:"id"`
	Deleted bool   `json:"deleted"`
}

// ErrBadUser means the event's user cannot be stored (no id, no updated_at): retrying the
// same event cannot help.
var ErrBadUser = errors.New("event data is not a usable Clerk user")

// StoreUser maps Clerk's user to the stored user. eventTS (Unix milliseconds, the event's ts;
// 0 outside an event) stands in for updated_at when Clerk's data lacks it. It returns an error
// wrapping ErrBadUser when c has no id, or neither updated_at nor eventTS is set.
func (c User) StoreUser(eventTS int64) (store.User, error) {
	id := strings.TrimSpace(c.ID)
	if id == "" {
		return store.User{}, fmt.Errorf("%w: data.id is missing", ErrBadUser)
	}
	updated := c.UpdatedAt
	if updated <= 0 {
		updated = eventTS
	}
	if updated <= 0 {
		return store.User{}, fmt.Errorf("%w: user %s has no data.updated_at and the event no ts", ErrBadUser, id)
	}
	u := store.User{
		ID:             id,
		Email:          primaryEmail(c),
		FullName:       fullName(c.FirstName, c.LastName),
		ProfilePicture: deref(c.ImageURL),
		CreatedAt:      c.CreatedAt,
		UpdatedAt:      updated,
	}
	u.ClerkUsername = strings.TrimSpace(deref(c.Username))
	u.Username = derivedUsername(u.Email, id)
	return u, nil
}

// primaryEmail returns the address whose id is primary_email_address_id, or nil.
func primaryEmail(c User) *string {
	if c.PrimaryEmailAddressID == nil {
		return nil
	}
	for _, e := range c.EmailAddresses {
		if e.ID == *c.PrimaryEmailAddressID && strings.TrimSpace(e.EmailAddress) != "" {
			addr := strings.TrimSpace(e.EmailAddress)
			return &addr
		}
	}
	return nil
}

// fullName joins the non-empty parts of first and last name with one space.
func fullName(first, last *string) string {
	parts := make([]string, 0, 2)
	for _, p := range []*string{first, last} {
		if s := strings.Join(strings.Fields(deref(p)), " "); s != "" {
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, " ")
}

// derivedUsername returns the email's local part, lowercased and reduced to letters, digits,
// '.', '_' and '-', or, when that leaves nothing, one derived from the user id.
func derivedUsername(email *string, id string) string {
	if email != nil {
		local, _, _ := strings.Cut(*email, "@")
		if name := sanitizeUsername(local); name != "" {
			return name
		}
	}
	tail := strings.TrimPrefix(id, "user_")
	if len(tail) > 12 {
		tail = tail[len(tail)-12:]
	}
	if name := sanitizeUsername(tail); name != "" {
		return "user_" + name
	}
	return "user"
}

func sanitizeUsername(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
			b.WriteRune(r)
		}
	}
	return strings.Trim(b.String(), "._-")
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
