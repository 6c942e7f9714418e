package clerkfake

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// generatedPrefix starts every generated user's id: GeneratedID(i) is the prefix and i in 12
// digits, 32 characters in all, as long as Clerk's own user ids (user_ and 27 characters), so
// that anything sized by ids (memoized step state, say) is sized as it would be against Clerk.
const generatedPrefix = "user_2zFakeGenerated"

// generatedEpoch is the created_at of the generated user 0 (2023-01-01T00:00:00Z, in Unix
// milliseconds); each later one was created a second after the one before.
const generatedEpoch int64 = 1_672_531_200_000

var (
	firstNames = []string{"Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Margaret", "Ken", "Radia", "Dennis", "Frances", "John", "Sophie", "Tim", "Hedy", "Linus"}
	lastNames  = []string{"Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Hamilton", "Thompson", "Perlman", "Ritchie", "Allen", "McCarthy", "Wilson", "Berners-Lee", "Lamarr", "Torvalds", "Goldberg"}
)

// GeneratedID returns the id of the generated user i (see GeneratedUser):
// user_2zFakeGenerated000000000042 for 42.
func GeneratedID(i int) string { return fmt.Sprintf("%s%012d", generatedPrefix, i) }

// generatedIndex returns the index i of the generated user whose id is id, and false for an id
// GeneratedID does not make.
func generatedIndex(id string) (int, bool) {
	digits, ok := strings.CutPrefix(id, generatedPrefix)
	if !ok || len(digits) != 12 {
		return 0, false
	}
	i, err := strconv.Atoi(digits)
	if err != nil || i < 0 {
		return 0, false
	}
	return i, true
}

// GeneratedUser returns the generated user i, the same on every call: the id GeneratedID(i),
// a first and last name, a unique username and email address, a picture, created_at a second
// after user i-1's (from 2023-01-01 on) and updated_at up to a day later. It is computed, not
// stored: a stand-in with a million generated users (Generate) holds none of them.
func GeneratedUser(i int) User {
	first, last := firstNames[i%len(firstNames)], lastNames[(i/len(firstNames))%len(lastNames)]
	id := GeneratedID(i)
	created := generatedEpoch + int64(i)*1000
	return User{
		ID:        id,
		FirstName: first,
		LastName:  last,
		Username:  fmt.Sprintf("%s%s%d", strings.ToLower(first), strings.ToLower(strings.ReplaceAll(last, "-", "")), i),
		Email:     fmt.Sprintf("%s.%s.%d@example.com", strings.ToLower(first), strings.ToLower(strings.ReplaceAll(last, "-", "")), i),
		ImageURL:  "https://img.clerk.com/" + id,
		CreatedAt: created,
		UpdatedAt: generatedUpdatedAt(i),
	}
}

// generatedUpdatedAt is the updated_at of GeneratedUser(i): up to a day after its created_at.
func generatedUpdatedAt(i int) int64 {
	return generatedEpoch + int64(i)*1000 + int64(i%1440)*60_000
}

// userList is the stand-in's list of users, in the order GET /v1/users serves them: the
// prepended users (head), then the generated range 0..gen-1 less the removed indices (each
// GeneratedUser(i) or its replacement), then the users added at the end (tail). The generated
// range costs memory only for what was removed or replaced.
type userList struct {
	head, tail []User
	gen        int
	removed    []int        // sorted indices of removed generated users
	replaced   map[int]User // generated users Put replaced, by index
	// byUpdated caches the positions in updated_at order (see sortedByUpdated); every change
	// to the list drops it.
	byUpdated []int32
}

// len returns how many users the list holds.
func (l *userList) len() int { return len(l.head) + l.gen - len(l.removed) + len(l.tail) }

// at returns the user at position pos (0 <= pos < len()).
func (l *userList) at(pos int) User {
	if pos < len(l.head) {
		return l.head[pos]
	}
	pos -= len(l.head)
	kept := l.gen - len(l.removed)
	if pos < kept {
		return l.generated(l.nthKept(pos))
	}
	return l.tail[pos-kept]
}

// generated returns the generated user i, or what replaced it.
func (l *userList) generated(i int) User {
	if u, ok := l.replaced[i]; ok {
		return u
	}
	return GeneratedUser(i)
}

// nthKept returns the index of the k-th (from 0) generated user not removed: the smallest i
// with i = k + (the removed indices up to i).
func (l *userList) nthKept(k int) int {
	i := k
	for {
		next := k + sort.SearchInts(l.removed, i+1)
		if next == i {
			return i
		}
		i = next
	}
}

// lookup returns the user with the given id, and false when the list has none.
func (l *userList) lookup(id string) (User, bool) {
	for _, part := range [][]User{l.head, l.tail} {
		for _, u := range part {
			if u.ID == id {
				return u, true
			}
		}
	}
	if i, ok := l.generatedAt(id); ok {
		return l.generated(i), true
	}
	return User{}, false
}

// generatedAt returns the index of the generated user with the given id, and false when the
// id is no generated user's or that user was removed.
func (l *userList) generatedAt(id string) (int, bool) {
	i, ok := generatedIndex(id)
	if !ok || i >= l.gen {
		return 0, false
	}
	if j := sort.SearchInts(l.removed, i); j < len(l.removed) && l.removed[j] == i {
		return 0, false
	}
	return i, true
}

// put replaces the user with u's id where it is, or adds u at the end.
func (l *userList) put(u User) {
	l.byUpdated = nil
	for _, part := range [][]User{l.head, l.tail} {
		for i := range part {
			if part[i].ID == u.ID {
				part[i] = u
				return
			}
		}
	}
	if i, ok := l.generatedAt(u.ID); ok {
		if l.replaced == nil {
			l.replaced = map[int]User{}
		}
		l.replaced[i] = u
		return
	}
	l.tail = append(l.tail, u)
}

// prepend adds u at the start.
func (l *userList) prepend(u User) {
	l.byUpdated = nil
	l.head = append([]User{u}, l.head...)
}

// remove deletes the user with the given id, if the list has it.
func (l *userList) remove(id string) {
	l.byUpdated = nil
	for _, part := range []*[]User{&l.head, &l.tail} {
		for i, u := range *part {
			if u.ID == id {
				*part = append((*part)[:i:i], (*part)[i+1:]...)
				return
			}
		}
	}
	if i, ok := l.generatedAt(id); ok {
		j := sort.SearchInts(l.removed, i)
		l.removed = append(l.removed[:j], append([]int{i}, l.removed[j:]...)...)
		delete(l.replaced, i)
	}
}

// generate makes the generated range hold n users, forgetting what was removed or replaced.
func (l *userList) generate(n int) {
	l.gen, l.removed, l.replaced, l.byUpdated = max(n, 0), nil, nil, nil
}
