package store_test

import (
	"context"
	"testing"
	"time"
)

// TestReconcileWatermark: none at first; each record moves it forward, never back; scopes
// keep their own.
func TestReconcileWatermark(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openStore(t)
	if at, ok, err := s.ReconcileWatermark(ctx, "users"); ok || err != nil || !at.IsZero() {
		t.Fatalf("ReconcileWatermark before any record = %v, %v, %v; want none", at, ok, err)
	}
	base := time.UnixMilli(1_700_000_000_000).UTC()
	now := base.Add(time.Hour)
	steps := []struct {
		name   string
		record time.Time
		want   time.Time
	}{
		{"first", base, base},
		{"later moves it", base.Add(time.Minute), base.Add(time.Minute)},
		{"earlier keeps it", base, base.Add(time.Minute)},
		{"the same keeps it", base.Add(time.Minute), base.Add(time.Minute)},
	}
	for _, st := range steps {
		if err := s.RecordReconcileWatermark(ctx, "users", st.record, now); err != nil {
			t.Fatalf("%s: RecordReconcileWatermark(%v) = %v", st.name, st.record, err)
		}
		if at, ok, err := s.ReconcileWatermark(ctx, "users"); !ok || err != nil || !at.Equal(st.want) {
			t.Errorf("%s: ReconcileWatermark = %v, %v, %v; want %v", st.name, at, ok, err, st.want)
		}
	}
	if _, ok, err := s.ReconcileWatermark(ctx, "organizations"); ok || err != nil {
		t.Errorf("ReconcileWatermark(organizations) = %v, %v; want none (its own scope)", ok, err)
	}
}
