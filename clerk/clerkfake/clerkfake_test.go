package clerkfake_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"clerksync/clerk/clerkfake"
)

const key = "sk_test_clerkfake"

// get sends GET path (after /v1) to s with the secret key, and returns the status, the
// Retry-After header and the body.
func get(t *testing.T, s *clerkfake.Server, path string) (int, string, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Retry-After"), body
}

// listIDs returns the ids GET /v1/users?limit=..&offset=.. answers.
func listIDs(t *testing.T, s *clerkfake.Server, limit, offset int) []string {
	t.Helper()
	path := fmt.Sprintf("/users?limit=%d&offset=%d", limit, offset)
	status, _, body := get(t, s, path)
	if status != http.StatusOK {
		t.Fatalf("GET %s = %d; want 200: %s", path, status, body)
	}
	var users []struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(body, &users); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	ids := []string{}
	for _, u := range users {
		ids = append(ids, u.ID)
	}
	return ids
}

// count returns what GET /v1/users/count answers.
func count(t *testing.T, s *clerkfake.Server) int {
	t.Helper()
	_, _, body := get(t, s, "/users/count")
	var c struct {
		TotalCount int `json:"total_count"`
	}
	if err := json.Unmarshal(body, &c); err != nil {
		t.Fatalf("GET /v1/users/count: %v", err)
	}
	return c.TotalCount
}

func TestGeneratedUser(t *testing.T) {
	tests := []struct {
		i                       int
		wantID, wantUsername    string
		wantCreated, wantUpdate int64
	}{
		{0, "user_2zFakeGenerated000000000000", "adalovelace0", 1_672_531_200_000, 1_672_531_200_000},
		{17, "user_2zFakeGenerated000000000017", "gracehopper17", 1_672_531_217_000, 1_672_531_217_000 + 17*60_000},
		{999_999, "user_2zFakeGenerated000000999999", "linusthompson999999", 1_672_531_200_000 + 999_999_000, 1_672_531_200_000 + 999_999_000 + int64(999_999%1440)*60_000},
	}
	for _, tt := range tests {
		got := clerkfake.GeneratedUser(tt.i)
		if got.ID != tt.wantID || got.Username != tt.wantUsername || got.CreatedAt != tt.wantCreated || got.UpdatedAt != tt.wantUpdate {
			t.Errorf("GeneratedUser(%d) = %s %s created %d updated %d; want %s %s created %d updated %d",
				tt.i, got.ID, got.Username, got.CreatedAt, got.UpdatedAt, tt.wantID, tt.wantUsername, tt.wantCreated, tt.wantUpdate)
		}
		if len(got.ID) != 32 {
			t.Errorf("GeneratedUser(%d).ID = %q, %d characters; want 32, as Clerk's", tt.i, got.ID, len(got.ID))
		}
		if got.Email == "" || got.FirstName == "" || got.LastName == "" || got.ImageURL == "" {
			t.Errorf("GeneratedUser(%d) = %+v; want every field filled", tt.i, got)
		}
		if again := clerkfake.GeneratedUser(tt.i); again != got {
			t.Errorf("GeneratedUser(%d) twice = %+v, then %+v; want the same", tt.i, got, again)
		}
	}
}

// TestGenerate: generated users are listed in order after the prepended ones and before those
// put at the end; Put replaces a generated user where it is and Remove takes it out of the
// list, and both shift nothing else.
func TestGenerate(t *testing.T) {
	g := clerkfake.GeneratedID
	tests := []struct {
		name          string
		n             int
		change        func(s *clerkfake.Server)
		limit, offset int
		want          []string
		wantCount     int
	}{
		{"first page", 10, nil, 3, 0, []string{g(0), g(1), g(2)}, 10},
		{"last page, short", 10, nil, 4, 8, []string{g(8), g(9)}, 10},
		{"past the end", 10, nil, 4, 10, []string{}, 10},
		{"a million: the last page", 1_000_000, nil, 500, 999_998, []string{g(999_998), g(999_999)}, 1_000_000},
		{"prepended first, put last", 3, func(s *clerkfake.Server) {
			s.Put(clerkfake.NewUser("user_tail", "Tail", 1))
			s.Prepend(clerkfake.NewUser("user_head", "Head", 1))
		}, 10, 0, []string{"user_head", g(0), g(1), g(2), "user_tail"}, 5},
		{"removed ones skipped", 8, func(s *clerkfake.Server) {
			s.Remove(g(1))
			s.Remove(g(2))
			s.Remove(g(5))
		}, 3, 1, []string{g(3), g(4), g(6)}, 5},
		{"removed twice, and an unknown id", 4, func(s *clerkfake.Server) {
			s.Remove(g(0))
			s.Remove(g(0))
			s.Remove(g(9))
			s.Remove("user_nobody")
		}, 10, 0, []string{g(1), g(2), g(3)}, 3},
		{"replaced in place", 3, func(s *clerkfake.Server) {
			s.Put(clerkfake.NewUser(g(1), "Replaced", 5))
		}, 10, 0, []string{g(0), g(1), g(2)}, 3},
		{"an id past the range is a new user", 2, func(s *clerkfake.Server) {
			s.Put(clerkfake.NewUser(g(7), "New", 5))
		}, 10, 0, []string{g(0), g(1), g(7)}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := clerkfake.New(t, key)
			s.Generate(tt.n)
			if tt.change != nil {
				tt.change(s)
			}
			if got := listIDs(t, s, tt.limit, tt.offset); !slices.Equal(got, tt.want) {
				t.Errorf("GET /v1/users?limit=%d&offset=%d = %v; want %v", tt.limit, tt.offset, got, tt.want)
			}
			if got := count(t, s); got != tt.wantCount {
				t.Errorf("GET /v1/users/count = %d; want %d", got, tt.wantCount)
			}
		})
	}
}

// TestGeneratedGetUser: GET /v1/users/{id} answers a generated user as computed, or as Put
// replaced it, and 404 once it is removed or past the range.
func TestGeneratedGetUser(t *testing.T) {
	s := clerkfake.New(t, key)
	s.Generate(100)
	s.Put(clerkfake.NewUser(clerkfake.GeneratedID(7), "Replaced", 5))
	s.Remove(clerkfake.GeneratedID(8))
	tests := []struct {
		id         string
		wantStatus int
		wantFirst  string
	}{
		{clerkfake.GeneratedID(6), http.StatusOK, clerkfake.GeneratedUser(6).FirstName},
		{clerkfake.GeneratedID(7), http.StatusOK, "Replaced"},
		{clerkfake.GeneratedID(8), http.StatusNotFound, ""},
		{clerkfake.GeneratedID(100), http.StatusNotFound, ""},
		{"user_2zFakeGenerated00000000000x", http.StatusNotFound, ""},
	}
	for _, tt := range tests {
		status, _, body := get(t, s, "/users/"+tt.id)
		var u struct {
			FirstName string `json:"first_name"`
			Email     []struct {
				Address string `json:"email_address"`
			} `json:"email_addresses"`
		}
		_ = json.Unmarshal(body, &u)
		if status != tt.wantStatus || u.FirstName != tt.wantFirst {
			t.Errorf("GET /v1/users/%s = %d, first name %q; want %d, %q", tt.id, status, u.FirstName, tt.wantStatus, tt.wantFirst)
		}
	}
	// The user renders as Clerk's object, email address included.
	_, _, body := get(t, s, "/users/"+clerkfake.GeneratedID(6))
	if want := clerkfake.GeneratedUser(6).Email; !strings.Contains(string(body), `"email_address":"`+want+`"`) {
		t.Errorf("GET /v1/users/%s = %s; want the email address %s", clerkfake.GeneratedID(6), body, want)
	}
}

// TestLimitRate: past n requests in a window the stand-in answers 429 with the seconds left
// in the window as Retry-After, except GET /v1/jwks; the next window answers again; Stats
// counts every request, the 429s, and the most answered in one window.
func TestLimitRate(t *testing.T) {
	s := clerkfake.New(t, key)
	s.Generate(5)
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := start
	s.SetClock(func() time.Time { return now })
	s.LimitRate(2, 10*time.Second)
	tests := []struct {
		at             time.Duration // after start
		path           string
		wantStatus     int
		wantRetryAfter string
	}{
		{0, "/users?limit=1", 200, ""},
		{time.Second, "/users/count", 200, ""},
		{1500 * time.Millisecond, "/users?limit=1", 429, "9"}, // 8.5 s left: rounded up
		{2 * time.Second, "/jwks", 200, ""},
		{9 * time.Second, "/users/" + clerkfake.GeneratedID(1), 429, "1"},
		{9999 * time.Millisecond, "/users?limit=1", 429, "1"},
		{10 * time.Second, "/users?limit=1", 200, ""}, // a new window
		{11 * time.Second, "/users?limit=1", 200, ""},
		{12 * time.Second, "/users?limit=1", 429, "8"},
	}
	for _, tt := range tests {
		now = start.Add(tt.at)
		status, retryAfter, body := get(t, s, tt.path)
		if status != tt.wantStatus || retryAfter != tt.wantRetryAfter {
			t.Errorf("at %v: GET %s = %d, Retry-After %q; want %d, %q", tt.at, tt.path, status, retryAfter, tt.wantStatus, tt.wantRetryAfter)
		}
		if status == http.StatusTooManyRequests && !strings.Contains(string(body), `"code":"too_many_requests"`) {
			t.Errorf("at %v: GET %s = 429 %s; want Clerk's too_many_requests error", tt.at, tt.path, body)
		}
	}
	if got, want := s.Stats(), (clerkfake.Stats{Requests: 9, RateLimited: 4, PeakWindow: 2}); got != want {
		t.Errorf("Stats() = %+v; want %+v", got, want)
	}

	// Lifted: every request is answered, and no window is counted.
	s.LimitRate(0, 0)
	for range 5 {
		if status, _, _ := get(t, s, "/users/count"); status != http.StatusOK {
			t.Fatalf("GET /v1/users/count = %d with the limit lifted; want 200", status)
		}
	}
	// RateLimit's 429s come on top, and count too.
	s.RateLimit("3")
	if status, retryAfter, _ := get(t, s, "/users/count"); status != http.StatusTooManyRequests || retryAfter != "3" {
		t.Errorf("GET /v1/users/count = %d, Retry-After %q after RateLimit(\"3\"); want 429, \"3\"", status, retryAfter)
	}
	if got, want := s.Stats(), (clerkfake.Stats{Requests: 15, RateLimited: 5}); got != want {
		t.Errorf("Stats() = %+v; want %+v", got, want)
	}
}

// TestStart: a stand-in started on a listener of the caller's serves there until Close.
func TestStart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := clerkfake.Start(ln, key)
	if want := "http://" + ln.Addr().String() + "/v1"; s.URL != want {
		t.Errorf("URL = %q; want %q", s.URL, want)
	}
	s.Generate(3)
	if got, want := listIDs(t, s, 10, 0), []string{clerkfake.GeneratedID(0), clerkfake.GeneratedID(1), clerkfake.GeneratedID(2)}; !slices.Equal(got, want) {
		t.Errorf("GET /v1/users = %v; want %v", got, want)
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close() = %v; want nil", err)
	}
	if resp, err := http.Get(s.URL + "/users/count"); err == nil {
		resp.Body.Close()
		t.Errorf("GET /v1/users/count after Close = %d; want a refused connection", resp.StatusCode)
	}
}

// TestGenerateOrganization: an organization's generated members are listed after the stored
// ones, in order, computed page by page; user_id picks among both; removing the organization
// removes them.
func TestGenerateOrganization(t *testing.T) {
	g := func(j int) string { return clerkfake.GeneratedMembership("org_big", j).ID }
	tests := []struct {
		name      string
		m         int
		change    func(s *clerkfake.Server)
		query     string
		want      []string
		wantTotal int
	}{
		{"first page", 50_000, nil, "limit=3&offset=0", []string{g(0), g(1), g(2)}, 50_000},
		{"last page, short", 50_000, nil, "limit=500&offset=49998", []string{g(49_998), g(49_999)}, 50_000},
		{"past the end", 10, nil, "limit=5&offset=10", []string{}, 10},
		{"stored ones first", 3, func(s *clerkfake.Server) {
			s.PutMembership(clerkfake.NewMembership("org_big", "user_stored", "org:admin", 1))
		}, "limit=10&offset=0", []string{clerkfake.MembershipID("org_big", "user_stored"), g(0), g(1), g(2)}, 4},
		{"by user", 100, func(s *clerkfake.Server) {
			s.PutMembership(clerkfake.NewMembership("org_big", "user_stored", "org:admin", 1))
		}, "limit=10&offset=0&user_id=" + clerkfake.GeneratedID(42) + "&user_id=user_stored&user_id=" + clerkfake.GeneratedID(7) + "&user_id=" + clerkfake.GeneratedID(100),
			[]string{clerkfake.MembershipID("org_big", "user_stored"), g(7), g(42)}, 3},
		{"removed with its organization", 10, func(s *clerkfake.Server) {
			s.RemoveOrganization("org_big")
			s.PutOrganization(clerkfake.NewOrganization("org_big", "Big again", 2))
		}, "limit=5&offset=0", []string{}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := clerkfake.New(t, key)
			s.GenerateOrganization(clerkfake.NewOrganization("org_big", "Big", 1), tt.m)
			if tt.change != nil {
				tt.change(s)
			}
			path := "/organizations/org_big/memberships?" + tt.query
			status, _, body := get(t, s, path)
			if status != http.StatusOK {
				t.Fatalf("GET %s = %d; want 200: %s", path, status, body)
			}
			var list struct {
				Data []struct {
					ID     string `json:"id"`
					Public struct {
						UserID string `json:"user_id"`
					} `json:"public_user_data"`
				} `json:"data"`
				Total int `json:"total_count"`
			}
			if err := json.Unmarshal(body, &list); err != nil {
				t.Fatalf("GET %s: %v", path, err)
			}
			got := []string{}
			for _, m := range list.Data {
				got = append(got, m.ID)
			}
			if !slices.Equal(got, tt.want) || list.Total != tt.wantTotal {
				t.Errorf("GET %s = %v, total %d; want %v, total %d", path, got, list.Total, tt.want, tt.wantTotal)
			}
		})
	}
}

func TestGeneratedMembership(t *testing.T) {
	tests := []struct {
		j        int
		wantRole string
	}{{0, "org:admin"}, {1, "org:member"}, {49_999, "org:member"}}
	for _, tt := range tests {
		got := clerkfake.GeneratedMembership("org_big", tt.j)
		u := clerkfake.GeneratedUser(tt.j)
		if got.ID != clerkfake.MembershipID("org_big", u.ID) || got.OrgID != "org_big" || got.UserID != u.ID || got.Role != tt.wantRole || got.UpdatedAt != u.UpdatedAt {
			t.Errorf("GeneratedMembership(org_big, %d) = %+v; want the membership of %s, role %s, updated_at %d", tt.j, got, u.ID, tt.wantRole, u.UpdatedAt)
		}
	}
}
