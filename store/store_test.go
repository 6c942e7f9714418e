package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"clerksync/store"
)

func ptr(s string) *string { return &s }

func TestUpsertGuards(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	v1 := store.User{ID: "user_1", Email: ptr("a@x.org"), FullName: "A One", Username: "a", CreatedAt: 100, UpdatedAt: 100}
	v2 := v1
	v2.FullName, v2.UpdatedAt = "A Two", 200

	steps := []struct {
		name  string
		u     store.User
		want  store.Outcome
		name2 string
	}{
		{"first create", v1, store.Inserted, "A One"},
		{"replay", v1, store.Skipped, "A One"},
		{"newer", v2, store.Updated, "A Two"},
		{"older after newer", v1, store.Skipped, "A Two"},
		{"newer replay", v2, store.Skipped, "A Two"},
	}
	for _, st := range steps {
		got, err := s.UpsertUser(ctx, st.u)
		if err != nil || got != st.want {
			t.Fatalf("%s: UpsertUser = %q, %v; want %q", st.name, got, err, st.want)
		}
		u, err := s.Get(ctx, "user_1")
		if err != nil || u.FullName != st.name2 {
			t.Fatalf("%s: Get = %+v, %v; want full_name %q", st.name, u, err, st.name2)
		}
	}
	if got, err := s.DeleteUser(ctx, "user_1", 300); err != nil || got != store.Deleted {
		t.Fatalf("DeleteUser = %q, %v; want deleted", got, err)
	}
	if got, err := s.DeleteUser(ctx, "user_1", 400); err != nil || got != store.AlreadyDeleted {
		t.Fatalf("DeleteUser again = %q, %v; want already_deleted", got, err)
	}
	v3 := v1
	v3.UpdatedAt = 999
	if got, err := s.UpsertUser(ctx, v3); err != nil || got != store.Skipped {
		t.Fatalf("UpsertUser after delete = %q, %v; want skipped", got, err)
	}
	u, err := s.Get(ctx, "user_1")
	want := store.User{ID: "user_1", CreatedAt: 100, UpdatedAt: 200, Deleted: true, DeletedAt: 300}
	if err != nil || u != want {
		t.Fatalf("Get after delete = %+v, %v; want %+v", u, err, want)
	}
}

func TestConcurrentUsernames(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	const n = 20
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = s.UpsertUser(ctx, store.User{ID: fmt.Sprintf("user_%02d", i), Username: "jane", CreatedAt: 1, UpdatedAt: 1})
		}()
	}
	wg.Wait()
	seen := map[string]string{}
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("UpsertUser(user_%02d) = %v", i, errs[i])
		}
		u, err := s.Get(ctx, fmt.Sprintf("user_%02d", i))
		if err != nil {
			t.Fatal(err)
		}
		if other, ok := seen[u.Username]; ok {
			t.Fatalf("username %q given to %s and %s", u.Username, other, u.ID)
		}
		seen[u.Username] = u.ID
	}
	if _, err := s.Get(ctx, "nobody"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get(nobody) = %v; want ErrNotFound", err)
	}
	t.Log(seen)
}
