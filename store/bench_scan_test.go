package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"clerksync/store"
)

// BenchmarkScanLiveUsers times what the users' pass's scan steps ask of the embedded FerretDB
// (by-id mode) for 20,000 user-like documents, half of them listed: the scan through one
// server cursor in batches of 1,000, and, per batch, which ids the listed marks hold (a point
// lookup each). It reports the time per live user read, alone and with the lookups.
// go test -run '^$' -bench ScanLiveUsers -benchtime 1x -count 3 ./store
func BenchmarkScanLiveUsers(b *testing.B) {
	ctx := context.Background()
	st := openStoreMode(b, store.WritesByID)
	const users, batch = 20_000, 1_000
	for from := 0; from < users; from += batch {
		docs := make([]bson.D, 0, batch)
		ids := make([]string, 0, batch/2)
		for i := from; i < from+batch; i++ {
			id := fmt.Sprintf("user_2b%030d", i)
			docs = append(docs, bson.D{{Key: "_id", Value: id}, {Key: "username", Value: fmt.Sprint("user", i)},
				{Key: "email", Value: fmt.Sprintf("user%d@example.org", i)}, {Key: "first_name", Value: "First"},
				{Key: "last_name", Value: "Last"}, {Key: "created_at", Value: int64(1)}, {Key: "updated_at", Value: int64(2)},
				{Key: "image_url", Value: "https://img.example.org/" + id}})
			if i%2 == 0 {
				ids = append(ids, id)
			}
		}
		if err := store.InsertRawUsers(ctx, st, docs); err != nil {
			b.Fatal(err)
		}
		if _, err := st.MarkReconciled(ctx, "users", "bench", "listed", from, ids); err != nil {
			b.Fatal(err)
		}
	}
	for _, lookups := range []bool{false, true} {
		b.Run(fmt.Sprintf("lookups=%t", lookups), func(b *testing.B) {
			for b.Loop() {
				start, n := time.Now(), 0
				for token := ""; ; {
					ids, next, err := st.ScanLiveUsers(ctx, "users", "bench", token, batch)
					if err != nil {
						b.Fatal(err)
					}
					if lookups {
						if _, err := st.ReconcileMarked(ctx, "users", "bench", "listed", ids); err != nil {
							b.Fatal(err)
						}
					}
					n += len(ids)
					if token = next; token == "" {
						break
					}
				}
				if n != users {
					b.Fatalf("scanned %d users; want %d", n, users)
				}
				b.ReportMetric(float64(time.Since(start).Microseconds())/float64(n), "µs/user")
			}
		})
	}
}
