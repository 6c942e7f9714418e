package embedded_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"clerksync/store"
	"clerksync/store/embedded"
)

// TestIndexIDs asks SQLite how it runs the query FerretDB makes for a lookup by _id: a scan of
// the whole table before IndexIDs, an index search after, with the user still found and
// written the same way. (BenchmarkEmbeddedGetByID measures what that is worth.)
func TestIndexIDs(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	emb, st := startOwnEmbedded(t, dir, "idx")
	if err := emb.IndexIDs(ctx, "not-created-yet"); err != nil {
		t.Errorf("IndexIDs(database not created yet) = %v; want nil", err)
	}
	email := "a@example.com"
	u := store.User{ID: "user_1", Email: &email, Username: "a", UpdatedAt: 1}
	if out, err := st.UpsertUser(ctx, u); err != nil || out != store.Inserted {
		t.Fatalf("UpsertUser = %v, %v; want inserted", out, err)
	}

	plan := func() string { return lookupPlan(t, ctx, dir, "idx") }

	before := plan()
	if !strings.Contains(before, "SCAN") {
		// If FerretDB ever matches its own _id index, IndexIDs is no longer needed.
		t.Errorf("find by _id before IndexIDs: plan %q; want a SCAN (the FerretDB v1.24 behaviour IndexIDs works around)", before)
	}
	for range 2 { // idempotent
		if err := emb.IndexIDs(ctx, "idx"); err != nil {
			t.Fatalf("IndexIDs = %v", err)
		}
	}
	after := plan()
	if !strings.Contains(after, "USING INDEX users_") || strings.Contains(after, "SCAN") {
		t.Errorf("find by _id after IndexIDs: plan %q; want SEARCH ... USING INDEX", after)
	}

	newEmail := "b@example.com"
	u.UpdatedAt, u.Email = 2, &newEmail
	if out, err := st.UpsertUser(ctx, u); err != nil || out != store.Updated {
		t.Errorf("UpsertUser after IndexIDs = %v, %v; want updated", out, err)
	}
	got, err := st.Get(ctx, "user_1")
	if err != nil || got.Email == nil || *got.Email != newEmail {
		t.Errorf("Get after IndexIDs = %+v, %v; want email b@example.com", got, err)
	}
}

// TestOpen: Server.Open gives the users, organizations and memberships collections their _id
// lookup index by itself, before any write, in every write mode; opening again (in another
// mode) changes nothing, and the store reads what it writes. (That WritesAuto picks the by-id
// writes here is store's TestEmbeddedWriteMode, through storetest.)
func TestOpen(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	emb, err := embedded.Start(context.Background(), dir, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emb.Stop)
	for _, mode := range []store.WriteMode{store.WritesAuto, store.WritesConditional, store.WritesByID} {
		st, err := emb.Open(ctx, "opened", mode)
		if err != nil {
			t.Fatalf("Server.Open(mode %d) = %v", mode, err)
		}
		t.Cleanup(func() { _ = st.Close(context.Background()) })
		for _, coll := range []string{store.Collection, store.OrganizationsCollection, store.MembershipsCollection} {
			if plan := lookupPlanOf(t, ctx, dir, "opened", coll); !strings.Contains(plan, "USING INDEX "+coll+"_") || strings.Contains(plan, "SCAN") {
				t.Errorf("find by _id in %s after Server.Open(mode %d): plan %q; want SEARCH ... USING INDEX", coll, mode, plan)
			}
		}
	}
	st, err := emb.Open(ctx, "opened", store.WritesAuto)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close(context.Background()) })
	u := store.User{ID: "user_1", Username: "a", UpdatedAt: 1}
	if out, err := st.UpsertUser(ctx, u); err != nil || out != store.Inserted {
		t.Fatalf("UpsertUser = %v, %v; want inserted", out, err)
	}
	if got, err := st.Get(ctx, "user_1"); err != nil || got.Username != "a" {
		t.Errorf("Get = %+v, %v; want user_1 with username a", got, err)
	}
	// A collection of marks that a reconciliation pass creates later gets the index too.
	if _, err := st.MarkReconciled(ctx, "users", "p1", "listed", 0, []string{"user_1"}); err != nil {
		t.Fatal(err)
	}
	marks := store.ReconcilePrefix + "users_p1_listed"
	if plan := lookupPlanOf(t, ctx, dir, "opened", marks); !strings.Contains(plan, "USING INDEX "+marks+"_") || strings.Contains(plan, "SCAN") {
		t.Errorf("find by _id in %s: plan %q; want SEARCH ... USING INDEX", marks, plan)
	}
	// And again once dropped and made anew (a scan started again drops its candidates).
	if err := st.ForgetReconcileSet(ctx, "users", "p1", "listed"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.MarkReconciled(ctx, "users", "p1", "listed", 0, []string{"user_1"}); err != nil {
		t.Fatal(err)
	}
	if plan := lookupPlanOf(t, ctx, dir, "opened", marks); !strings.Contains(plan, "USING INDEX "+marks+"_") || strings.Contains(plan, "SCAN") {
		t.Errorf("find by _id in %s made anew: plan %q; want SEARCH ... USING INDEX", marks, plan)
	}
}

// lookupPlan asks SQLite how it runs the query FerretDB v1.24 makes for a find, update or
// delete by _id (internal/backends/sqlite: `WHERE ` + metadata.IDColumn + ` = ?`) on the users
// collection of the embedded database named database under dir.
func lookupPlan(t *testing.T, ctx context.Context, dir, database string) string {
	t.Helper()
	return lookupPlanOf(t, ctx, dir, database, store.Collection)
}

// lookupPlanOf is lookupPlan on the collection coll.
func lookupPlanOf(t *testing.T, ctx context.Context, dir, database, coll string) string {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, database+".sqlite")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var table string
	if err := db.QueryRowContext(ctx, `SELECT table_name FROM _ferretdb_collections WHERE name = ?`, coll).Scan(&table); err != nil {
		t.Fatalf("%s table: %v", coll, err)
	}
	rows, err := db.QueryContext(ctx, fmt.Sprintf(`EXPLAIN QUERY PLAN SELECT _ferretdb_sjson FROM %q WHERE _ferretdb_sjson->'$._id' = ?`, table), `"user_1"`)
	if err != nil {
		t.Fatalf("explain: %v", err)
	}
	defer rows.Close()
	var details []string
	for rows.Next() {
		var id, parent, notUsed int
		var detail string
		if err := rows.Scan(&id, &parent, &notUsed, &detail); err != nil {
			t.Fatal(err)
		}
		details = append(details, detail)
	}
	return strings.Join(details, "; ")
}

// BenchmarkEmbeddedGetByID reads users by _id from an embedded FerretDB holding 2,000 users of
// about 1.5 KB each, without and with IndexIDs: O(users) per read against O(log users).
// go test -run '^$' -bench EmbeddedGetByID ./store/embedded
func BenchmarkEmbeddedGetByID(b *testing.B) {
	ctx := context.Background()
	emb, st := startOwnEmbedded(b, b.TempDir(), "bench")
	const users = 2000
	picture := "https://img.clerk.com/" + strings.Repeat("x", 1400)
	for i := range users {
		email := fmt.Sprintf("user%d@example.org", i)
		u := store.User{ID: fmt.Sprintf("user_%d", i), Email: &email, Username: fmt.Sprintf("user%d", i), ProfilePicture: picture, UpdatedAt: 1}
		if _, err := st.UpsertUser(ctx, u); err != nil {
			b.Fatal(err)
		}
	}
	get := func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if _, err := st.Get(ctx, fmt.Sprintf("user_%d", i*7%users)); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("unindexed", get)
	if err := emb.IndexIDs(ctx, "bench"); err != nil {
		b.Fatal(err)
	}
	b.Run("indexed", get)
}

// startOwnEmbedded starts an embedded FerretDB in dir and opens the store on its database as on
// any server (store.Open, not Server.Open), so without the _id lookup index. Both stop when the
// test ends.
func startOwnEmbedded(tb testing.TB, dir, database string) (*embedded.Server, *store.Store) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	emb, err := embedded.Start(context.Background(), dir, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(emb.Stop)
	st, err := store.Open(ctx, emb.URI(), database)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = st.Close(context.Background()) })
	return emb, st
}
