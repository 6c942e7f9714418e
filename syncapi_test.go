package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"clerksync/clerk/clerkfake"
	"clerksync/store"
)

// TestSyncUserOnDemand drives POST /api/sync/users/{id} through the whole service against the
// stand-in Backend API: a user missing from the database appears, a wrong token is refused,
// a deleted user stays deleted, and a newer stored version is kept.
func TestSyncUserOnDemand(t *testing.T) {
	const key = "sk_test_ondemand"
	token := strings.Repeat("t0k3n", 8)
	fake := clerkfake.New(t, key,
		clerkfake.NewUser("user_missing", "Fresh", 2000),
		clerkfake.NewUser("user_deleted", "Ghost", 9000),
		clerkfake.NewUser("user_newer", "Stale", 1000),
	)
	_, dbURI := startEmbeddedDB(t)
	users := openTestStore(t, dbURI+"/ondemand", "ondemand")
	ctx := context.Background()
	if err := clerkfake.Seed(ctx, users, clerkfake.NewUser("user_deleted", "Ghost", 1000), clerkfake.NewUser("user_newer", "Newer", 5000)); err != nil {
		t.Fatal(err)
	}
	if _, err := users.DeleteUser(ctx, "user_deleted", 2000); err != nil {
		t.Fatal(err)
	}
	svc := startRun(t, map[string]string{
		"PORT":                         "0",
		"CLERK_WEBHOOK_SIGNING_SECRET": newSecret(t),
		"INNGEST_DEV":                  "http://127.0.0.1:1",
		"MONGODB_URI":                  dbURI + "/ondemand",
		"CLERK_SECRET_KEY":             key,
		"CLERK_API_URL":                fake.URL,
		"SYNC_API_TOKEN":               token,
	})

	tests := []struct {
		name, id, token string
		want            int
		wantName        string        // full_name in the answer ("" to skip)
		wantOutcome     store.Outcome // "" to skip
	}{
		{"missing user appears", "user_missing", token, 200, "Fresh Doe", store.Inserted},
		{"again: nothing newer", "user_missing", token, 200, "Fresh Doe", store.Skipped},
		{"no token", "user_missing", "", 401, "", ""},
		{"wrong token", "user_missing", token + "x", 401, "", ""},
		{"deleted user stays deleted", "user_deleted", token, 410, "", store.Skipped},
		{"newer stored version kept", "user_newer", token, 200, "Newer Doe", store.Skipped},
		{"Clerk has no such user", "user_nobody", token, 404, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, svc.url+"/api/sync/users/"+tt.id, nil)
			if tt.token != "" {
				req.Header.Set("Authorization", "Bearer "+tt.token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Fatalf("POST /api/sync/users/%s = %d %s; want %d", tt.id, resp.StatusCode, body, tt.want)
			}
			var got syncedUser
			_ = json.Unmarshal(body, &got)
			if tt.wantName != "" && got.FullName != tt.wantName {
				t.Errorf("POST /api/sync/users/%s full_name = %q; want %q", tt.id, got.FullName, tt.wantName)
			}
			if tt.wantOutcome != "" && got.Outcome != tt.wantOutcome {
				t.Errorf("POST /api/sync/users/%s outcome = %q; want %q", tt.id, got.Outcome, tt.wantOutcome)
			}
		})
	}
	for id, want := range map[string]string{"user_missing": "Fresh Doe", "user_newer": "Newer Doe"} {
		if u, err := users.Get(ctx, id); err != nil || u.FullName != want {
			t.Errorf("stored %s = %+v, %v; want full name %q", id, u, err, want)
		}
	}
	if u, err := users.Get(ctx, "user_deleted"); err != nil || !u.Deleted || u.FullName != "" {
		t.Errorf("stored user_deleted = %+v, %v; want a tombstone", u, err)
	}
}

func TestSyncRouteOffWithoutToken(t *testing.T) {
	svc := startRun(t, map[string]string{
		"PORT":                         "0",
		"CLERK_WEBHOOK_SIGNING_SECRET": newSecret(t),
		"INNGEST_DEV":                  "http://127.0.0.1:1",
		"DATA_DIR":                     t.TempDir(),
	})
	resp, err := http.Post(svc.url+"/api/sync/users/user_x", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("POST /api/sync/users/user_x without SYNC_API_TOKEN = %d; want 404 (the route is off)", resp.StatusCode)
	}
}
