package clerk_test

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"clerksync/clerk"
)

// FuzzStoreUser feeds arbitrary event data through the Clerk-payload-to-user mapping the way
// the Inngest SDK does (JSON into User, then StoreUser): it must never panic, and a user it
// accepts must be storable and follow the documented rules. The seed corpus
// (testdata/fuzz/FuzzStoreUser) runs as an ordinary test.
func FuzzStoreUser(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte, eventTS int64) {
		var c clerk.User
		if err := json.Unmarshal(data, &c); err != nil {
			return // the SDK answers such an event with a NoRetryError before the function runs
		}
		u, err := c.StoreUser(eventTS)
		if err != nil {
			if strings.TrimSpace(c.ID) != "" && (c.UpdatedAt > 0 || eventTS > 0) {
				t.Fatalf("StoreUser(id %q, updated_at %d, ts %d) = %v; want a user", c.ID, c.UpdatedAt, eventTS, err)
			}
			return
		}
		if u.ID == "" || u.ID != strings.TrimSpace(u.ID) {
			t.Fatalf("user id %q; want the trimmed, non-empty Clerk id", u.ID)
		}
		if u.UpdatedAt <= 0 {
			t.Fatalf("updated_at %d; want > 0", u.UpdatedAt)
		}
		if u.Username == "" || u.Username != strings.TrimSpace(u.Username) {
			t.Fatalf("username %q; want a non-empty, trimmed name", u.Username)
		}
		if u.FullName != strings.TrimSpace(u.FullName) || strings.Contains(u.FullName, "  ") {
			t.Fatalf("full_name %q has stray spaces", u.FullName)
		}
		if strings.Contains(u.FullName, "null") && !strings.Contains(string(data), "null") {
			t.Fatalf("full_name %q says null", u.FullName)
		}
		if u.Email != nil {
			found := false
			for _, e := range c.EmailAddresses {
				if c.PrimaryEmailAddressID != nil && e.ID == *c.PrimaryEmailAddressID && strings.TrimSpace(e.EmailAddress) == *u.Email {
					found = true
				}
			}
			if !found {
				t.Fatalf("email %q is not the primary address of %s", *u.Email, data)
			}
		}
		if utf8.ValidString(u.Username) {
			for _, r := range u.Username {
				if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
					t.Fatalf("derived username %q has %q; want only [a-z0-9._-]", u.Username, r)
				}
			}
		}
	})
}

func TestStoreUserSeedCorpusPresent(t *testing.T) {
	t.Parallel()
	files, _ := filepath.Glob("testdata/fuzz/FuzzStoreUser/*")
	if len(files) < 5 {
		t.Errorf("testdata/fuzz/FuzzStoreUser has %d seed files; want the committed corpus (at least 5)", len(files))
	}
}
