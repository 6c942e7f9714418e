package clerkfake

import (
	"cmp"
	"slices"
	"strings"
	"time"
)

// listOrder is the order a GET /v1/users asks for with order_by.
type listOrder int

const (
	// byList is the list's own order (order_by=+created_at, or none): see Server.
	byList listOrder = iota
	// byUpdatedAsc is order_by=+updated_at (or updated_at): least recently updated first.
	byUpdatedAsc
	// byUpdatedDesc is order_by=-updated_at: most recently updated first.
	byUpdatedDesc
)

// orderOf reads the order_by of a users' list request: +updated_at, updated_at and -updated_at
// sort by updated_at (ties in the list's order, reversed for -); anything else (+created_at,
// what the service sends for a full pass) keeps the list's order.
func orderOf(v string) listOrder {
	// A "+" sent unescaped arrives as a space.
	switch strings.TrimSpace(v) {
	case "+updated_at", "updated_at":
		return byUpdatedAsc
	case "-updated_at":
		return byUpdatedDesc
	}
	return byList
}

// atInOrder returns the user at position pos (0 <= pos < len()) of the list in order o.
func (l *userList) atInOrder(o listOrder, pos int) User {
	switch o {
	case byUpdatedAsc:
		return l.at(int(l.sortedByUpdated()[pos]))
	case byUpdatedDesc:
		s := l.sortedByUpdated()
		return l.at(int(s[len(s)-1-pos]))
	}
	return l.at(pos)
}

// sortedByUpdated returns the list's positions by updated_at, ascending, ties by position. It
// is computed once per change to the list (about a second and 12 MB for a million generated
// users: the keys are computed, not the users), then cached.
func (l *userList) sortedByUpdated() []int32 {
	if l.byUpdated != nil {
		return l.byUpdated
	}
	keys := make([]int64, 0, l.len())
	for _, u := range l.head {
		keys = append(keys, u.UpdatedAt)
	}
	r := 0
	for i := 0; i < l.gen; i++ {
		if r < len(l.removed) && l.removed[r] == i {
			r++
			continue
		}
		if u, ok := l.replaced[i]; ok {
			keys = append(keys, u.UpdatedAt)
		} else {
			keys = append(keys, generatedUpdatedAt(i))
		}
	}
	for _, u := range l.tail {
		keys = append(keys, u.UpdatedAt)
	}
	order := make([]int32, len(keys))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(a, b int32) int {
		if c := cmp.Compare(keys[a], keys[b]); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	l.byUpdated = order
	return order
}

// GenerateChanged makes k of the generated users (Generate), spread evenly over them, changed
// after since, as if they had been updated in Clerk while the service missed their webhooks:
// each gets updated_at since plus 1 ms, 2 ms, ... and the last name "Changed" (the rest of
// GeneratedUser(i) kept). It returns their ids, in the order changed (the last one is the most
// recently updated). k is capped at the generated users' count; a removed generated user is
// not brought back (fewer ids come back then).
func (s *Server) GenerateChanged(k int, since time.Time) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.users.gen
	k = min(max(k, 0), n)
	ids := make([]string, 0, k)
	for j := 0; j < k; j++ {
		i := int(int64(j) * int64(n) / int64(k))
		u := GeneratedUser(i)
		if _, ok := s.users.generatedAt(u.ID); !ok {
			continue
		}
		u.LastName = "Changed"
		u.UpdatedAt = since.UnixMilli() + int64(j) + 1
		s.users.put(u)
		ids = append(ids, u.ID)
	}
	return ids
}
