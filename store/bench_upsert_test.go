package store_test

import (
	"context"
	"fmt"
	"testing"

	"clerksync/store"
)

// BenchmarkUpsertPaths times UpsertUser on the package's embedded FerretDB, in each write mode,
// holding 2,000 users: an update of an existing user (no collision), and a sign-up whose
// derived username ("jane") 50 users already hold with suffixes, so it collides first.
// go test -run '^$' -bench UpsertPaths -count 3 ./store
func BenchmarkUpsertPaths(b *testing.B) {
	for _, m := range modes {
		b.Run(m.name, func(b *testing.B) {
			ctx := context.Background()
			st := openStoreMode(b, m.mode)
			const users = 2000
			for i := range users {
				email := fmt.Sprintf("user%d@example.org", i)
				if i < 50 {
					email = fmt.Sprintf("jane@host%d.example.org", i)
				}
				u := store.User{ID: fmt.Sprintf("user_%d", i), Email: &email, Username: "jane", FullName: "Seed", UpdatedAt: 1}
				if i >= 50 {
					u.Username = fmt.Sprintf("user%d", i)
				}
				if _, err := st.UpsertUser(ctx, u); err != nil {
					b.Fatal(err)
				}
			}
			n := 0 // -count reruns the sub-benchmarks on the same database: keep counting
			b.Run("update", func(b *testing.B) {
				for ; b.Loop(); n++ {
					i := n
					id := 50 + i*7%(users-50)
					u := store.User{ID: fmt.Sprintf("user_%d", id), FullName: fmt.Sprint("v", i), Username: fmt.Sprintf("user%d", id), UpdatedAt: int64(2 + i)}
					if out, err := st.UpsertUser(ctx, u); err != nil || out != store.Updated {
						b.Fatal(out, err)
					}
				}
			})
			b.Run("signup-colliding", func(b *testing.B) {
				for ; b.Loop(); n++ {
					i := n
					u := store.User{ID: fmt.Sprintf("user_new%d", i), FullName: "Jane", Username: "jane", UpdatedAt: 5}
					if out, err := st.UpsertUser(ctx, u); err != nil || out != store.Inserted {
						b.Fatal(out, err)
					}
				}
			})
		})
	}
}
