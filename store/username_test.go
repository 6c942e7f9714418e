package store_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"clerksync/store"
)

// The username rule (UpsertUser): a Clerk username displaces a derived one; of two Clerk claims
// the newer record wins; a removed Clerk username is released; a username never blocks the
// rest of the write. Every test runs in both write modes.

// clerkVersion is one version of a Clerk user: its Clerk username ("" for none), the local part
// of its email (its derived username), its name and updated_at.
func clerkVersion(id, clerk, local string, at int64) store.User {
	email := local + "@example.org"
	return store.User{
		ID: id, Email: &email, FullName: "Name " + local + fmt.Sprint(at), ProfilePicture: "https://img.example/" + id,
		Username: local, ClerkUsername: clerk, CreatedAt: 1, UpdatedAt: at,
	}
}

// eachMode runs f in both write modes, each on a fresh database.
func eachMode(t *testing.T, f func(t *testing.T, s *store.Store)) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) { f(t, openStoreMode(t, m.mode)) })
	}
}

// mustUpsert writes u and fails the test unless the outcome is want ("" accepts any).
func mustUpsert(t *testing.T, s *store.Store, u store.User, want store.Outcome) {
	t.Helper()
	got, err := s.UpsertUser(t.Context(), u)
	if err != nil || (want != "" && got != want) {
		t.Fatalf("UpsertUser(%s %q@%d) = %q, %v; want %q", u.ID, u.ClerkUsername, u.UpdatedAt, got, err, want)
	}
}

// usernames returns the stored username and Clerk username of each id.
func usernames(t *testing.T, s *store.Store, ids ...string) map[string][2]string {
	t.Helper()
	out := map[string][2]string{}
	for _, id := range ids {
		u, err := s.Get(t.Context(), id)
		if err != nil {
			t.Fatalf("Get(%s) = %v", id, err)
		}
		out[id] = [2]string{u.Username, u.ClerkUsername}
	}
	return out
}

// checkHolds fails unless user id holds exactly name.
func checkHolds(t *testing.T, s *store.Store, id, name string) store.User {
	t.Helper()
	u, err := s.Get(t.Context(), id)
	if err != nil || u.Username != name {
		t.Errorf("Get(%s) username = %q, %v; want %q", id, u.Username, err, name)
	}
	return u
}

// checkSuffixed fails unless user id holds base followed by digits (a derived username made
// from base), and returns the user.
func checkSuffixed(t *testing.T, s *store.Store, id, base string) store.User {
	t.Helper()
	u, err := s.Get(t.Context(), id)
	rest, ok := strings.CutPrefix(u.Username, base)
	if err != nil || !ok || rest == "" || strings.Trim(rest, "0123456789") != "" {
		t.Errorf("Get(%s) username = %q, %v; want %q followed by digits", id, u.Username, err, base)
	}
	return u
}

func TestUsernameDerivedYields(t *testing.T) {
	t.Parallel()
	t.Run("on create", func(t *testing.T) {
		eachMode(t, func(t *testing.T, s *store.Store) {
			mustUpsert(t, s, clerkVersion("user_a", "", "jane", 200), store.Inserted)
			checkHolds(t, s, "user_a", "jane")
			// B signs up with the Clerk username "jane", which A holds only as derived (from
			// jane@...): B gets it, even with an older record, and A gets a suffix.
			mustUpsert(t, s, clerkVersion("user_b", "jane", "b", 100), store.Inserted)
			checkHolds(t, s, "user_b", "jane")
			if a := checkSuffixed(t, s, "user_a", "jane"); a.ClerkUsername != "" || a.UpdatedAt != 200 {
				t.Errorf("displaced user_a = %+v; want no Clerk username and its data unchanged", a)
			}
		})
	})
	t.Run("on update with a name change in the same update", func(t *testing.T) {
		eachMode(t, func(t *testing.T, s *store.Store) {
			mustUpsert(t, s, clerkVersion("user_a", "", "jane", 100), store.Inserted)
			mustUpsert(t, s, clerkVersion("user_b", "bob", "bob", 100), store.Inserted)
			// B renames to "jane" and changes name and email in the same update. On FerretDB
			// the username collision of an update is an InternalError, not E11000.
			upd := clerkVersion("user_b", "jane", "bobby.new", 300)
			mustUpsert(t, s, upd, store.Updated)
			b := checkHolds(t, s, "user_b", "jane")
			if b.FullName != upd.FullName || b.Email == nil || *b.Email != *upd.Email || b.UpdatedAt != 300 || b.ClerkUsername != "jane" {
				t.Errorf("user_b = %+v; want the whole update (name %q, email %q, updated_at 300)", b, upd.FullName, *upd.Email)
			}
			checkSuffixed(t, s, "user_a", "jane")
		})
	})
	t.Run("an update without a Clerk username keeps the derived one", func(t *testing.T) {
		eachMode(t, func(t *testing.T, s *store.Store) {
			mustUpsert(t, s, clerkVersion("user_a", "", "jane", 100), store.Inserted)
			mustUpsert(t, s, clerkVersion("user_a", "", "janet.new", 200), store.Updated)
			checkHolds(t, s, "user_a", "jane")
		})
	})
}

func TestUsernameClerkClaims(t *testing.T) {
	t.Parallel()
	t.Run("a stale claim waits for its own newer event", func(t *testing.T) {
		eachMode(t, func(t *testing.T, s *store.Store) {
			mustUpsert(t, s, clerkVersion("user_a", "neo", "a", 200), store.Inserted)
			// B's record says "neo" at 100, but A held it at 200: B renamed since, and that
			// event is pending. B's other fields land; B waits with a suffixed username.
			stale := clerkVersion("user_b", "neo", "b", 100)
			mustUpsert(t, s, stale, store.Inserted)
			checkHolds(t, s, "user_a", "neo")
			b := checkSuffixed(t, s, "user_b", "neo")
			if b.FullName != stale.FullName || b.ClerkUsername != "neo" {
				t.Errorf("user_b = %+v; want its data, claiming neo", b)
			}
			mustUpsert(t, s, clerkVersion("user_b", "trinity", "b", 300), store.Updated)
			checkHolds(t, s, "user_b", "trinity")
			checkHolds(t, s, "user_a", "neo")
		})
	})
	t.Run("a newer claim displaces the older holder", func(t *testing.T) {
		eachMode(t, func(t *testing.T, s *store.Store) {
			mustUpsert(t, s, clerkVersion("user_b", "neo", "b", 100), store.Inserted)
			mustUpsert(t, s, clerkVersion("user_a", "neo", "a", 200), store.Inserted)
			checkHolds(t, s, "user_a", "neo")
			if b := checkSuffixed(t, s, "user_b", "neo"); b.ClerkUsername != "neo" || b.UpdatedAt != 100 {
				t.Errorf("displaced user_b = %+v; want its record unchanged but the username", b)
			}
			mustUpsert(t, s, clerkVersion("user_b", "trinity", "b", 150), store.Updated)
			checkHolds(t, s, "user_b", "trinity")
		})
	})
	t.Run("equal updated_at: the lower id wins, in either order", func(t *testing.T) {
		for _, first := range []string{"user_a", "user_b"} {
			t.Run(first+" first", func(t *testing.T) {
				eachMode(t, func(t *testing.T, s *store.Store) {
					second := map[string]string{"user_a": "user_b", "user_b": "user_a"}[first]
					mustUpsert(t, s, clerkVersion(first, "neo", "x", 100), store.Inserted)
					mustUpsert(t, s, clerkVersion(second, "neo", "y", 100), store.Inserted)
					checkHolds(t, s, "user_a", "neo")
					checkSuffixed(t, s, "user_b", "neo")
				})
			})
		}
	})
	t.Run("Clerk usernames are kept whole", func(t *testing.T) {
		eachMode(t, func(t *testing.T, s *store.Store) {
			long := strings.Repeat("long_handle_", 6) // 72 bytes
			mustUpsert(t, s, clerkVersion("user_a", long, "a", 100), store.Inserted)
			checkHolds(t, s, "user_a", long)
		})
	})
}

func TestUsernameReleased(t *testing.T) {
	t.Parallel()
	// A holds the Clerk username "neo" and removes it at 200; B takes "neo" at 300. In either
	// delivery order B ends holding neo, and A a username derived from its email.
	for _, order := range []string{"release first", "claim first"} {
		t.Run(order, func(t *testing.T) {
			eachMode(t, func(t *testing.T, s *store.Store) {
				mustUpsert(t, s, clerkVersion("user_a", "neo", "thomas", 100), store.Inserted)
				release := clerkVersion("user_a", "", "thomas", 200)
				claim := clerkVersion("user_b", "neo", "b", 300)
				if order == "release first" {
					mustUpsert(t, s, release, store.Updated)
					mustUpsert(t, s, claim, store.Inserted)
				} else {
					mustUpsert(t, s, claim, store.Inserted)
					mustUpsert(t, s, release, store.Updated)
				}
				checkHolds(t, s, "user_b", "neo")
				if a := checkHolds(t, s, "user_a", "thomas"); a.ClerkUsername != "" {
					t.Errorf("user_a Clerk username = %q; want none", a.ClerkUsername)
				}
			})
		})
	}
}

// permutations returns every order of n items.
func permutations(n int) [][]int {
	if n == 0 {
		return [][]int{{}}
	}
	var out [][]int
	for _, p := range permutations(n - 1) {
		for i := 0; i <= len(p); i++ {
			q := slices.Insert(slices.Clone(p), i, n-1)
			out = append(out, q)
		}
	}
	return out
}

func TestUsernameSwaps(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		initial []store.User
		events  []store.User
		want    map[string]string
	}{{
		name:    "through a temporary handle, as Clerk allows",
		initial: []store.User{clerkVersion("user_a", "a", "x", 10), clerkVersion("user_b", "b", "y", 10)},
		events: []store.User{
			clerkVersion("user_b", "tmp", "y", 20),
			clerkVersion("user_a", "b", "x", 30),
			clerkVersion("user_b", "a", "y", 40),
		},
		want: map[string]string{"user_a": "b", "user_b": "a"},
	}, {
		name:    "directly",
		initial: []store.User{clerkVersion("user_a", "a", "x", 10), clerkVersion("user_b", "b", "y", 10)},
		events:  []store.User{clerkVersion("user_a", "b", "x", 20), clerkVersion("user_b", "a", "y", 30)},
		want:    map[string]string{"user_a": "b", "user_b": "a"},
	}, {
		name:    "a rotation of three",
		initial: []store.User{clerkVersion("user_a", "a", "x", 10), clerkVersion("user_b", "b", "y", 10), clerkVersion("user_c", "c", "z", 10)},
		events: []store.User{
			clerkVersion("user_a", "b", "x", 20),
			clerkVersion("user_b", "c", "y", 30),
			clerkVersion("user_c", "a", "z", 40),
		},
		want: map[string]string{"user_a": "b", "user_b": "c", "user_c": "a"},
	}}
	for _, tc := range tests {
		for _, order := range permutations(len(tc.events)) {
			t.Run(fmt.Sprintf("%s/order %v", tc.name, order), func(t *testing.T) {
				eachMode(t, func(t *testing.T, s *store.Store) {
					for _, u := range tc.initial {
						mustUpsert(t, s, u, store.Inserted)
					}
					for _, i := range order {
						mustUpsert(t, s, tc.events[i], "")
					}
					for id, name := range tc.want {
						checkHolds(t, s, id, name)
					}
				})
			})
		}
	}
}

// TestUsernameNeverBlocksTheRest: when every candidate username is taken, the user is written
// without one: email, name, picture and updated_at land.
func TestUsernameNeverBlocksTheRest(t *testing.T) {
	t.Parallel()
	eachMode(t, func(t *testing.T, s *store.Store) {
		ctx := t.Context()
		// Other users hold every candidate of user_x: "busy" and its suffixes, and "neo"'s.
		for _, base := range []string{"busy", "neo"} {
			for a := range 12 {
				name := store.UsernameCandidate(base, "user_x", a)
				if base == "neo" && a == 0 {
					continue
				}
				if err := store.InsertRaw(ctx, s, bson.D{{Key: "_id", Value: fmt.Sprintf("user_%s%d", base, a)}, {Key: "username", Value: name}, {Key: "updated_at", Value: int64(1)}}); err != nil {
					t.Fatal(err)
				}
			}
		}
		mustUpsert(t, s, clerkVersion("user_neo", "neo", "n", 500), store.Inserted)

		v1 := clerkVersion("user_x", "", "busy", 100)
		mustUpsert(t, s, v1, store.Inserted)
		if u := checkHolds(t, s, "user_x", ""); u.FullName != v1.FullName || u.UpdatedAt != 100 {
			t.Errorf("user_x = %+v; want its data without a username", u)
		}
		// A stale claim on "neo" whose suffixes are all taken: the rest of the update lands.
		v2 := clerkVersion("user_x", "neo", "busy.new", 200)
		mustUpsert(t, s, v2, store.Updated)
		if u := checkHolds(t, s, "user_x", ""); u.FullName != v2.FullName || u.UpdatedAt != 200 || u.ClerkUsername != "neo" || *u.Email != *v2.Email {
			t.Errorf("user_x = %+v; want the update's data, claiming neo, without a username", u)
		}
		checkHolds(t, s, "user_neo", "neo")
	})
}

// TestUniqueViolationShapes: both answers to a unique-index violation are recognised, as the
// embedded FerretDB gives them: E11000 for an insert, and for an update an InternalError
// (code 1) saying "UNIQUE constraint failed", which is not E11000.
func TestUniqueViolationShapes(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := openStore(t)
	for _, id := range []string{"user_1", "user_2"} {
		if err := store.InsertRaw(ctx, s, bson.D{{Key: "_id", Value: id}, {Key: "username", Value: id}}); err != nil {
			t.Fatal(err)
		}
	}
	insertErr := store.InsertRaw(ctx, s, bson.D{{Key: "_id", Value: "user_3"}, {Key: "username", Value: "user_1"}})
	updateErr := store.SetUsernameRaw(ctx, s, "user_2", "user_1")
	tests := []struct {
		name       string
		err        error
		wantE11000 bool
	}{
		{"insert", insertErr, true},
		{"update", updateErr, false},
	}
	for _, tc := range tests {
		if got := store.IsDuplicate(tc.err); !got {
			t.Errorf("IsDuplicate(%s error %v) = false; want true", tc.name, tc.err)
		}
		if got := mongo.IsDuplicateKeyError(tc.err); got != tc.wantE11000 {
			t.Errorf("%s error %v: IsDuplicateKeyError = %t; want %t (FerretDB's shape changed: check isDuplicate)", tc.name, tc.err, got, tc.wantE11000)
		}
	}
	if store.IsDuplicate(nil) || store.IsDuplicate(context.Canceled) {
		t.Error("IsDuplicate(nil or context.Canceled) = true; want false")
	}
}

// clerkHistory is a random history of Clerk usernames for n users in which, as in Clerk, no two
// users hold one username at any instant: each user is created, then renames itself to a free
// handle or removes its username, at strictly increasing times. Handles come from a small pool
// (h0, h1, ...) so that claims overlap, and some users' emails derive a username from the pool
// too. It returns every version, and each user's final Clerk username.
func clerkHistory(rng *rand.Rand, n, renames int) (versions []store.User, final map[string]string) {
	pool := make([]string, n/2+3)
	for i := range pool {
		pool[i] = fmt.Sprintf("h%d", i)
	}
	holder := map[string]string{}
	final = map[string]string{}
	local := map[string]string{}
	at := int64(1000)
	free := func() []string {
		var f []string
		for _, h := range pool {
			if holder[h] == "" {
				f = append(f, h)
			}
		}
		return f
	}
	for i := range n {
		id := fmt.Sprintf("user_%02d", i)
		local[id] = fmt.Sprintf("u%02d", i)
		if i%3 == 0 {
			local[id] = pool[rng.IntN(len(pool))] // a derived username a Clerk one will claim
		}
		name := ""
		if f := free(); i%2 == 0 && len(f) > 0 {
			name = f[rng.IntN(len(f))]
			holder[name] = id
		}
		at++
		final[id] = name
		versions = append(versions, clerkVersion(id, name, local[id], at))
	}
	for range renames {
		id := fmt.Sprintf("user_%02d", rng.IntN(n))
		name := ""
		if f := free(); rng.IntN(5) > 0 && len(f) > 0 {
			name = f[rng.IntN(len(f))]
		}
		delete(holder, final[id])
		if name != "" {
			holder[name] = id
		}
		at++
		final[id] = name
		versions = append(versions, clerkVersion(id, name, local[id], at))
	}
	return versions, final
}

// checkConverged fails unless every user holds its final Clerk username, users without one
// hold a username nobody else holds, and no username is held twice.
func checkConverged(t *testing.T, s *store.Store, final map[string]string) {
	t.Helper()
	owner := map[string]string{}
	for _, id := range slices.Sorted(func(yield func(string) bool) {
		for id := range final {
			if !yield(id) {
				return
			}
		}
	}) {
		u, err := s.Get(t.Context(), id)
		switch {
		case err != nil:
			t.Errorf("Get(%s) = %v", id, err)
			continue
		case final[id] != "" && u.Username != final[id]:
			t.Errorf("%s username = %q; want its Clerk username %q", id, u.Username, final[id])
		case final[id] == "" && (u.Username == "" || u.ClerkUsername != ""):
			t.Errorf("%s = %q (Clerk %q); want a derived username and no Clerk username", id, u.Username, u.ClerkUsername)
		}
		if other, dup := owner[u.Username]; dup && u.Username != "" {
			t.Errorf("username %q held by %s and %s", u.Username, other, id)
		}
		owner[u.Username] = id
	}
}

// TestConcurrentClaims: 30 users claiming overlapping handles (a valid Clerk history of renames,
// removals and swaps), every version delivered at once from its own goroutine in a random
// order: no write fails or deadlocks, and the collection ends as Clerk is.
func TestConcurrentClaims(t *testing.T) {
	t.Parallel()
	for seed := range uint64(3) {
		t.Run(fmt.Sprintf("seed %d", seed), func(t *testing.T) {
			eachMode(t, func(t *testing.T, s *store.Store) {
				rng := rand.New(rand.NewPCG(seed, 42))
				versions, final := clerkHistory(rng, 30, 90)
				rng.Shuffle(len(versions), func(i, j int) { versions[i], versions[j] = versions[j], versions[i] })
				errs := make([]error, len(versions))
				start := make(chan struct{})
				var wg sync.WaitGroup
				for i, u := range versions {
					wg.Go(func() {
						<-start
						_, errs[i] = s.UpsertUser(t.Context(), u)
					})
				}
				done := make(chan struct{})
				go func() { wg.Wait(); close(done) }()
				close(start)
				select {
				case <-done:
				case <-time.After(2 * time.Minute):
					t.Fatal("writes still running after 2 minutes: deadlocked?")
				}
				for i, err := range errs {
					if err != nil {
						t.Errorf("UpsertUser(%s %q@%d) = %v", versions[i].ID, versions[i].ClerkUsername, versions[i].UpdatedAt, err)
					}
				}
				checkConverged(t, s, final)
			})
		})
	}
}

// TestSequentialClaims: the same histories, each version written before the next arrives,
// in random orders (newest first among them).
func TestSequentialClaims(t *testing.T) {
	t.Parallel()
	for seed := range uint64(4) {
		t.Run(fmt.Sprintf("seed %d", seed), func(t *testing.T) {
			eachMode(t, func(t *testing.T, s *store.Store) {
				rng := rand.New(rand.NewPCG(seed, 7))
				versions, final := clerkHistory(rng, 30, 90)
				switch seed {
				case 0:
					slices.Reverse(versions) // newest first
				default:
					rng.Shuffle(len(versions), func(i, j int) { versions[i], versions[j] = versions[j], versions[i] })
				}
				for _, u := range versions {
					mustUpsert(t, s, u, "")
				}
				checkConverged(t, s, final)
			})
		})
	}
}
