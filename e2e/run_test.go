package e2e

import (
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The service started with its two kinds of database: the embedded one in DATA_DIR, and a
// MongoDB server named by MONGODB_URI.

func TestRunEmbeddedDatabase(t *testing.T) {
	parallel(t)
	dataDir := t.TempDir()
	base := startService(t, map[string]string{
		"PORT":                         "0",
		"CLERK_WEBHOOK_SIGNING_SECRET": newSecret(t),
		"INNGEST_DEV":                  "http://127.0.0.1:1",
		"DATA_DIR":                     dataDir,
	}).url
	// The embedded database got the _id lookup index (embedded.Server.Open) at start.
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dataDir, "app.sqlite")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	var indexes int
	err = db.QueryRow(`SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name LIKE 'users_%__id_lookup'`).Scan(&indexes)
	db.Close()
	if err != nil || indexes != 1 {
		t.Errorf("_id lookup indexes on the users table in %s/app.sqlite = %d, %v; want 1", dataDir, indexes, err)
	}
	tests := []struct {
		method, path string
		want         int
		wantBody     string
	}{
		{"GET", "/", 200, "running"},
		{"GET", "/healthz", 200, `"ok"`},
		{"GET", "/readyz", 200, `"ready"`},
		{"GET", "/api/inngest", 200, "function_count"},
		{"POST", "/api/webhooks/clerk", 401, "signature"},
		{"DELETE", "/api/inngest", 405, ""},
		{"GET", "/nope", 404, ""},
	}
	for _, tt := range tests {
		req, err := http.NewRequest(tt.method, base+tt.path, strings.NewReader(`{"type":"user.created","data":{}}`))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", tt.method, tt.path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.want || !strings.Contains(string(body), tt.wantBody) {
			t.Errorf("%s %s = %d %q; want %d containing %q", tt.method, tt.path, resp.StatusCode, body, tt.want, tt.wantBody)
		}
	}
}

func TestRunWithMongoDBURI(t *testing.T) {
	parallel(t)
	db := newDatabase(t, "appdb")
	dataDir := t.TempDir()
	// Credentials in the URI, as in production (FerretDB takes PLAIN ones without checking them).
	uri, err := url.Parse(db.uri + "?authMechanism=PLAIN")
	if err != nil {
		t.Fatal(err)
	}
	uri.User = url.UserPassword("svc", "pa55-in-uri")
	svc := startService(t, map[string]string{
		"PORT":                         "0",
		"CLERK_WEBHOOK_SIGNING_SECRET": newSecret(t),
		"INNGEST_EVENT_KEY":            "test-event-key",
		"INNGEST_SIGNING_KEY":          "signkey-test-0123456789abcdef",
		"INNGEST_SERVE_URL":            "https://sync.example.com/api/inngest",
		"MONGODB_URI":                  uri.String(),
		"DATA_DIR":                     dataDir,
	})
	base := svc.url
	// The log names the server and the database in use, never the credentials.
	logged := svc.log()
	if want := fmt.Sprintf("msg=\"using MongoDB\" hosts=%s database=%s", uri.Host, db.name); !strings.Contains(logged, want) {
		t.Errorf("the start-up log lacks %q:\n%s", want, logged)
	}
	if strings.Contains(logged, "pa55-in-uri") || strings.Contains(logged, "svc:") {
		t.Errorf("the start-up log shows MONGODB_URI's credentials:\n%s", logged)
	}
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET /readyz = %d; want 200", resp.StatusCode)
	}
	// In cloud mode the serve handler refuses unsigned calls.
	resp, err = http.Post(base+"/api/inngest?fnId=x", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("unsigned POST /api/inngest = %d; want 401", resp.StatusCode)
	}
	if entries := mustReadDir(t, dataDir); len(entries) != 0 {
		t.Errorf("DATA_DIR has %d entries with MONGODB_URI set; want the embedded database unused", len(entries))
	}
}

func mustReadDir(t *testing.T, dir string) []os.DirEntry {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return entries
}
