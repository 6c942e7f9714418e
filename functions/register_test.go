package functions_test

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/inngest/inngest/pkg/enums"
	"github.com/inngest/inngestgo"

	clerkevent "clerksync/clerk/event"
	"clerksync/functions"
)

// syncedFunction is a function as the SDK describes it to Inngest when the app is synced.
type syncedFunction struct {
	ID       string `json:"id"`
	Triggers []struct {
		Event      string  `json:"event"`
		Expression *string `json:"expression"`
	} `json:"triggers"`
	Concurrency []struct {
		Limit int                    `json:"limit"`
		Key   *string                `json:"key"`
		Scope enums.ConcurrencyScope `json:"scope"`
	} `json:"concurrency"`
	BatchEvents *struct {
		MaxSize int `json:"maxSize"`
	} `json:"batchEvents"`
}

// synced registers fns (and record-sync-failure) on a client of the tests' app, and returns the
// functions as the SDK describes them to Inngest (an in-band sync of the dev mode), by id
// without the app id.
func synced(t *testing.T, fns *functions.Functions) map[string]syncedFunction {
	t.Helper()
	client, err := inngestgo.NewClient(inngestgo.ClientOpts{AppID: testAppID, Logger: slog.New(slog.DiscardHandler),
		Dev: inngestgo.BoolPtr(true), AllowInBandSync: inngestgo.BoolPtr(true)})
	if err != nil {
		t.Fatalf("inngestgo.NewClient: %v", err)
	}
	if err := fns.Register(client); err != nil {
		t.Fatalf("Register = %v", err)
	}
	if err := functions.NewFailureRecorder(nil, slog.New(slog.DiscardHandler), functions.Config{}).Register(client); err != nil {
		t.Fatalf("FailureRecorder.Register = %v", err)
	}
	req := httptest.NewRequest(http.MethodPut, "http://app.test/api/inngest", strings.NewReader(`{"url":"http://app.test/api/inngest"}`))
	req.Header.Set(inngestgo.HeaderKeySyncKind, inngestgo.SyncKindInBand)
	rec := httptest.NewRecorder()
	client.Serve().ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("in-band sync = %d %s", rec.Code, rec.Body)
	}
	var body struct {
		Functions []syncedFunction `json:"functions"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("in-band sync answer: %v\n%s", err, rec.Body)
	}
	out := map[string]syncedFunction{}
	for _, f := range body.Functions {
		out[strings.TrimPrefix(f.ID, testAppID+"-")] = f
	}
	return out
}

// userOnlyStore is a store that knows only users, as a test's probe may be.
type userOnlyStore struct{ functions.UserStore }

// TestRegisteredFunctions: the functions Inngest is told of, their triggers, and the
// concurrency limits that serialise the runs of one user and of one organization.
func TestRegisteredFunctions(t *testing.T) {
	st := openStore(t)
	userKey, orgKey, memberKey := functions.UserConcurrencyKey, functions.OrgConcurrencyKey, functions.MembershipConcurrencyKey
	want := []struct {
		id, event string
		key       string // "": no concurrency limit
	}{
		{functions.SyncUserID, clerkevent.UserCreated, userKey},
		{functions.UpdateUserID, clerkevent.UserUpdated, userKey},
		{functions.DeleteUserID, clerkevent.UserDeleted, userKey},
		{functions.SyncOrganizationID, clerkevent.OrganizationCreated, orgKey},
		{functions.UpdateOrganizationID, clerkevent.OrganizationUpdated, orgKey},
		{functions.DeleteOrganizationID, clerkevent.OrganizationDeleted, orgKey},
		{functions.SyncMembershipID, clerkevent.MembershipCreated, memberKey},
		{functions.UpdateMembershipID, clerkevent.MembershipUpdated, memberKey},
		{functions.DeleteMembershipID, clerkevent.MembershipDeleted, memberKey},
	}
	wantIDs := []string{functions.RecordFailureID}
	for _, w := range want {
		wantIDs = append(wantIDs, w.id)
	}
	slices.Sort(wantIDs)
	ids := func(got map[string]syncedFunction) []string {
		out := make([]string, 0, len(got))
		for id := range got {
			out = append(out, id)
		}
		slices.Sort(out)
		return out
	}
	check := func(t *testing.T, got map[string]syncedFunction, ordered bool) {
		t.Helper()
		if !reflect.DeepEqual(ids(got), wantIDs) {
			t.Fatalf("functions synced = %q; want %q", ids(got), wantIDs)
		}
		for _, w := range want {
			f := got[w.id]
			if len(f.Triggers) != 1 || f.Triggers[0].Event != w.event || f.Triggers[0].Expression != nil {
				t.Errorf("%s triggers = %+v; want the event %s alone", w.id, f.Triggers, w.event)
			}
			var limits []string
			for _, c := range f.Concurrency {
				key := "<none>"
				if c.Key != nil {
					key = *c.Key
				}
				limits = append(limits, fmt.Sprintf("limit %d on %s in scope %s", c.Limit, key, c.Scope))
			}
			want := []string{fmt.Sprintf("limit 1 on %s in scope %s", w.key, enums.ConcurrencyScopeEnv)}
			if !ordered {
				want = nil
			}
			if !slices.Equal(limits, want) {
				t.Errorf("%s concurrency = %q; want %q", w.id, limits, want)
			}
			if f.BatchEvents != nil {
				t.Errorf("%s batches %+v; want one event per run", w.id, f.BatchEvents)
			}
		}
	}
	t.Run("ordered", func(t *testing.T) {
		check(t, synced(t, functions.New(st, st, slog.New(slog.DiscardHandler), functions.Config{AppID: testAppID})), true)
	})
	t.Run("without ordering", func(t *testing.T) {
		fns := functions.New(st, st, slog.New(slog.DiscardHandler), functions.Config{AppID: testAppID, WithoutUserOrdering: true})
		check(t, synced(t, fns), false)
	})
	t.Run("batched: the organization functions stay unbatched and ordered", func(t *testing.T) {
		got := synced(t, functions.New(st, st, slog.New(slog.DiscardHandler), functions.Config{AppID: testAppID, BatchSize: 10}))
		for _, id := range []string{functions.SyncOrganizationID, functions.SyncMembershipID, functions.DeleteMembershipID} {
			if f := got[id]; f.BatchEvents != nil || len(f.Concurrency) != 1 {
				t.Errorf("%s = %+v; want unbatched, with its concurrency limit", id, f)
			}
		}
		if f := got[functions.SyncUserID]; f.BatchEvents == nil || f.BatchEvents.MaxSize != 10 {
			t.Errorf("%s batch = %+v; want batches of 10", functions.SyncUserID, f.BatchEvents)
		}
	})
	t.Run("a store of users only: no organization functions", func(t *testing.T) {
		got := synced(t, functions.New(userOnlyStore{st}, st, slog.New(slog.DiscardHandler), functions.Config{AppID: testAppID}))
		wantIDs := []string{functions.DeleteUserID, functions.RecordFailureID, functions.SyncUserID, functions.UpdateUserID}
		if !reflect.DeepEqual(ids(got), wantIDs) {
			t.Errorf("functions synced = %q; want %q", ids(got), wantIDs)
		}
	})
	t.Run("a store of users only, with Config.Orgs", func(t *testing.T) {
		got := synced(t, functions.New(userOnlyStore{st}, st, slog.New(slog.DiscardHandler), functions.Config{AppID: testAppID, Orgs: st}))
		if !reflect.DeepEqual(ids(got), wantIDs) {
			t.Errorf("functions synced = %q; want %q", ids(got), wantIDs)
		}
	})
	t.Run("the sync functions' triggers are clerkevent.Handled", func(t *testing.T) {
		// The webhook bridge forwards by default only clerkevent.Handled: a function
		// triggered by another event would never run.
		var triggers []string
		for id, f := range synced(t, functions.New(st, st, slog.New(slog.DiscardHandler), functions.Config{AppID: testAppID})) {
			if id == functions.RecordFailureID {
				continue
			}
			for _, tr := range f.Triggers {
				triggers = append(triggers, tr.Event)
			}
		}
		handled := clerkevent.Handled()
		slices.Sort(triggers)
		slices.Sort(handled)
		if !slices.Equal(triggers, handled) {
			t.Errorf("the sync functions' triggers = %q; want clerkevent.Handled() = %q", triggers, handled)
		}
	})
	t.Run("record-sync-failure covers every sync function", func(t *testing.T) {
		got := synced(t, functions.New(st, st, slog.New(slog.DiscardHandler), functions.Config{AppID: testAppID}))
		f := got[functions.RecordFailureID]
		if len(f.Triggers) != 1 || f.Triggers[0].Event != functions.FunctionFailed || f.Triggers[0].Expression == nil {
			t.Fatalf("%s triggers = %+v; want %s with an expression", functions.RecordFailureID, f.Triggers, functions.FunctionFailed)
		}
		expr := *f.Triggers[0].Expression
		for _, w := range want {
			if cond := fmt.Sprintf("event.data.function_id == %q", testAppID+"-"+w.id); !strings.Contains(expr, cond) {
				t.Errorf("record-sync-failure's expression %s lacks %s", expr, cond)
			}
		}
	})
}

// keyExpr is the form of the concurrency keys: a string literal plus a path into the event.
var keyExpr = regexp.MustCompile(`^"([^"]*)" \+ event\.([A-Za-z_][A-Za-z0-9_.]*)$`)

// evalKey evaluates a concurrency key expression of the form keyExpr on an event (the payload
// of one of Clerk's examples: type, data, ...), as Inngest would: the literal followed by the
// string at the path. ok is false when the path names no string.
func evalKey(t *testing.T, key string, event map[string]any) (string, bool) {
	t.Helper()
	m := keyExpr.FindStringSubmatch(key)
	if m == nil {
		t.Fatalf("concurrency key %s is not of the form \"literal\" + event.path", key)
	}
	var v any = event
	for _, field := range strings.Split(m[2], ".") {
		obj, ok := v.(map[string]any)
		if !ok {
			return "", false
		}
		v = obj[field]
	}
	s, ok := v.(string)
	return m[1] + s, ok && s != ""
}

// TestOrgConcurrencyKeysAgree: on Clerk's example payloads, the organization functions' key and
// the membership functions' key evaluate to the same string for one organization, so that
// Inngest serialises the runs of an organization and of its memberships under one limit; and
// the user functions' key is the user's.
func TestOrgConcurrencyKeysAgree(t *testing.T) {
	const orgKey = "clerk-org:org_2g7np7Hrk0SN6kj5EDMLDaKNL0S"
	tests := []struct {
		file, key, want string
	}{
		{"openapi-organization.created.json", functions.OrgConcurrencyKey, orgKey},
		{"openapi-organization.updated.json", functions.OrgConcurrencyKey, orgKey},
		{"openapi-organization.deleted.json", functions.OrgConcurrencyKey, orgKey},
		{"openapi-organizationMembership.created.json", functions.MembershipConcurrencyKey, orgKey},
		{"openapi-organizationMembership.updated.json", functions.MembershipConcurrencyKey, orgKey},
		{"openapi-organizationMembership.deleted.json", functions.MembershipConcurrencyKey, orgKey},
		{"openapi-user.created.json", functions.UserConcurrencyKey, "clerk-user:user_2g7np7Hrk0SN6kj5EDMLDaKNL0S"},
		{"openapi-user.deleted.json", functions.UserConcurrencyKey, "clerk-user:user_2g7np7Hrk0SN6kj5EDMLDaKNL0S"},
	}
	for _, tc := range tests {
		body, err := os.ReadFile(filepath.Join(examplesDir, tc.file))
		if err != nil {
			t.Fatal(err)
		}
		var event map[string]any
		if err := json.Unmarshal(body, &event); err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		if got, ok := evalKey(t, tc.key, event); !ok || got != tc.want {
			t.Errorf("%s: %s = %q (found %t); want %q", tc.file, tc.key, got, ok, tc.want)
		}
	}
	// The two organization keys differ only in the path to the organization id.
	if o, m := keyExpr.FindStringSubmatch(functions.OrgConcurrencyKey), keyExpr.FindStringSubmatch(functions.MembershipConcurrencyKey); o == nil || m == nil || o[1] != m[1] {
		t.Errorf("OrgConcurrencyKey %s and MembershipConcurrencyKey %s do not share their literal", functions.OrgConcurrencyKey, functions.MembershipConcurrencyKey)
	}
	u, o := keyExpr.FindStringSubmatch(functions.UserConcurrencyKey), keyExpr.FindStringSubmatch(functions.OrgConcurrencyKey)
	if u == nil || o == nil || u[1] == o[1] {
		t.Errorf("UserConcurrencyKey %s and OrgConcurrencyKey %s share their literal: a user and an organization with one id would share a limit", functions.UserConcurrencyKey, functions.OrgConcurrencyKey)
	}
}
