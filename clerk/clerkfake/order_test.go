package clerkfake_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"clerksync/clerk/clerkfake"
)

// listByUpdated returns the ids and updated_at GET /v1/users?order_by=order answers.
func listByUpdated(t *testing.T, s *clerkfake.Server, order string, limit, offset int) ([]string, []int64) {
	t.Helper()
	path := fmt.Sprintf("/users?limit=%d&offset=%d&order_by=%s", limit, offset, url.QueryEscape(order))
	status, _, body := get(t, s, path)
	if status != http.StatusOK {
		t.Fatalf("GET %s = %d; want 200: %s", path, status, body)
	}
	var users []struct {
		ID        string `json:"id"`
		UpdatedAt int64  `json:"updated_at"`
	}
	if err := json.Unmarshal(body, &users); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	var ids []string
	var at []int64
	for _, u := range users {
		ids, at = append(ids, u.ID), append(at, u.UpdatedAt)
	}
	return ids, at
}

// TestOrderByUpdated: order_by=-updated_at lists the users most recently updated first, stored
// and generated together, GenerateChanged's first; +updated_at the other way round; the list's
// own order stays for order_by=+created_at.
func TestOrderByUpdated(t *testing.T) {
	s := clerkfake.New(t, key, clerkfake.NewUser("user_stored_new", "New", 1_900_000_000_000), clerkfake.NewUser("user_stored_old", "Old", 1))
	s.Generate(2000)
	since := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	changed := s.GenerateChanged(3, since)
	if want := []string{clerkfake.GeneratedID(0), clerkfake.GeneratedID(666), clerkfake.GeneratedID(1333)}; !slices.Equal(changed, want) {
		t.Errorf("GenerateChanged(3) = %q; want %q", changed, want)
	}

	ids, at := listByUpdated(t, s, "-updated_at", 5, 0)
	want := []string{"user_stored_new", changed[2], changed[1], changed[0]}
	if !slices.Equal(ids[:4], want) || at[3] != since.UnixMilli()+1 {
		t.Errorf("-updated_at first page = %q %v; want %q first, the oldest change at since+1ms", ids, at, want)
	}
	var all []int64
	for offset := 0; offset < 2002; offset += 500 {
		_, at := listByUpdated(t, s, "-updated_at", 500, offset)
		all = append(all, at...)
	}
	if len(all) != 2002 || !slices.IsSortedFunc(all, func(a, b int64) int { return int(b - a) }) {
		t.Errorf("-updated_at over all pages: %d users, sorted newest first %v; want 2002, sorted", len(all), slices.IsSortedFunc(all, func(a, b int64) int { return int(b - a) }))
	}
	if ids, _ := listByUpdated(t, s, "+updated_at", 1, 0); !slices.Equal(ids, []string{"user_stored_old"}) {
		t.Errorf("+updated_at first = %q; want user_stored_old", ids)
	}
	if ids, _ := listByUpdated(t, s, "+created_at", 2, 0); !slices.Equal(ids, []string{clerkfake.GeneratedID(0), clerkfake.GeneratedID(1)}) {
		t.Errorf("+created_at first = %q; want the list's order", ids)
	}
	// A change to the list reorders it.
	s.Remove(changed[2])
	if ids, _ := listByUpdated(t, s, "-updated_at", 2, 0); !slices.Equal(ids, []string{"user_stored_new", changed[1]}) {
		t.Errorf("-updated_at after Remove = %q; want %q", ids, []string{"user_stored_new", changed[1]})
	}
}
