package store_test

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"clerksync/store"
)

func TestLiveUserIDs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		upserts []string // user ids written, in order
		deletes []string // then deleted (a never-seen id leaves a tombstone too)
		want    []string
	}{
		{"empty collection", nil, nil, []string{}},
		{"live users sorted", []string{"user_c", "user_a", "user_b"}, nil, []string{"user_a", "user_b", "user_c"}},
		{"tombstones left out", []string{"user_a", "user_b", "user_c"}, []string{"user_b", "user_never_seen"}, []string{"user_a", "user_c"}},
		{"all deleted", []string{"user_a"}, []string{"user_a"}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			s := openStore(t)
			for i, id := range tt.upserts {
				if _, err := s.UpsertUser(ctx, store.User{ID: id, Username: id, CreatedAt: 1, UpdatedAt: int64(10 + i)}); err != nil {
					t.Fatalf("UpsertUser(%s) = %v", id, err)
				}
			}
			for _, id := range tt.deletes {
				if _, err := s.DeleteUser(ctx, id, 100); err != nil {
					t.Fatalf("DeleteUser(%s) = %v", id, err)
				}
			}
			got, err := s.LiveUserIDs(ctx)
			if err != nil {
				t.Fatalf("LiveUserIDs = %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("LiveUserIDs = %q; want %q", got, tt.want)
			}
		})
	}
}

func TestLiveUserIDsDatabaseError(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.LiveUserIDs(ctx); !errors.Is(err, store.ErrDatabase) {
		t.Errorf("LiveUserIDs(cancelled context) = %v; want an error wrapping store.ErrDatabase", err)
	}
}
