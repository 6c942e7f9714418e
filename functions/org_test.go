package functions_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	inngesterrors "github.com/inngest/inngestgo/errors"

	"clerksync/clerk"
	clerkevent "clerksync/clerk/event"
	"clerksync/functions"
	"clerksync/store"
)

// orgEvent is one organization or membership event as the webhook bridge sends it.
type orgEvent struct {
	name string                       // clerkevent.OrganizationCreated, ..., clerkevent.MembershipDeleted
	org  clerk.Organization           // organization events; a deletion sends only its id and slug
	mem  clerk.OrganizationMembership // membership events; a deletion sends the whole membership
	ts   int64                        // the event's ts, Unix milliseconds
}

func orgCreated(o clerk.Organization) orgEvent {
	return orgEvent{name: clerkevent.OrganizationCreated, org: o, ts: o.UpdatedAt}
}

func orgUpdated(o clerk.Organization) orgEvent {
	return orgEvent{name: clerkevent.OrganizationUpdated, org: o, ts: o.UpdatedAt}
}

func orgDeleted(id string, ts int64) orgEvent {
	return orgEvent{name: clerkevent.OrganizationDeleted, org: clerk.Organization{ID: id}, ts: ts}
}

func memCreated(m clerk.OrganizationMembership) orgEvent {
	return orgEvent{name: clerkevent.MembershipCreated, mem: m, ts: m.UpdatedAt}
}

func memUpdated(m clerk.OrganizationMembership) orgEvent {
	return orgEvent{name: clerkevent.MembershipUpdated, mem: m, ts: m.UpdatedAt}
}

// memDeleted is the deletion of m at ts, carrying m as it was, as Clerk sends it.
func memDeleted(m clerk.OrganizationMembership, ts int64) orgEvent {
	return orgEvent{name: clerkevent.MembershipDeleted, mem: m, ts: ts}
}

// isMembership reports whether the event is a membership's.
func (e orgEvent) isMembership() bool { return strings.Contains(e.name, "organizationMembership.") }

// isDelete reports whether the event is a deletion.
func (e orgEvent) isDelete() bool { return strings.HasSuffix(e.name, ".deleted") }

// id is the id of the organization or membership the event is about.
func (e orgEvent) id() string {
	if e.isMembership() {
		return e.mem.ID
	}
	return e.org.ID
}

// updatedAt is the event's data.updated_at.
func (e orgEvent) updatedAt() int64 {
	if e.isMembership() {
		return e.mem.UpdatedAt
	}
	return e.org.UpdatedAt
}

// String names the call the event makes, for failure messages: SyncMembership(orgmem_1).
func (e orgEvent) String() string {
	fn := map[string]string{
		clerkevent.OrganizationCreated: "SyncOrganization",
		clerkevent.OrganizationUpdated: "UpdateOrganization",
		clerkevent.OrganizationDeleted: "DeleteOrganization",
		clerkevent.MembershipCreated:   "SyncMembership",
		clerkevent.MembershipUpdated:   "UpdateMembership",
		clerkevent.MembershipDeleted:   "DeleteMembership",
	}[e.name]
	return fmt.Sprintf("%s(%s)", fn, e.id())
}

// sendOrg runs the function the event triggers and returns the outcome it reports, checking
// that its result names the event's organization or membership.
func (h *harness) sendOrg(e orgEvent) (store.Outcome, error) {
	var res any
	var err error
	switch e.name {
	case clerkevent.OrganizationCreated:
		res, err = h.fns.SyncOrganization(h.ctx, input(e.name, e.org, e.ts))
	case clerkevent.OrganizationUpdated:
		res, err = h.fns.UpdateOrganization(h.ctx, input(e.name, e.org, e.ts))
	case clerkevent.OrganizationDeleted:
		data := clerk.DeletedOrganization{ID: e.org.ID, Slug: e.org.Slug, Deleted: true}
		res, err = h.fns.DeleteOrganization(h.ctx, input(e.name, data, e.ts))
	case clerkevent.MembershipCreated:
		res, err = h.fns.SyncMembership(h.ctx, input(e.name, e.mem, e.ts))
	case clerkevent.MembershipUpdated:
		res, err = h.fns.UpdateMembership(h.ctx, input(e.name, e.mem, e.ts))
	case clerkevent.MembershipDeleted:
		res, err = h.fns.DeleteMembership(h.ctx, input(e.name, e.mem, e.ts))
	default:
		h.t.Fatalf("unknown event name %q", e.name)
	}
	if err != nil {
		return "", err
	}
	switch r := res.(type) {
	case functions.OrganizationResult:
		if e.isMembership() || r.OrganizationID != strings.TrimSpace(e.org.ID) {
			return "", fmt.Errorf("result %+v; want organization %q", r, e.org.ID)
		}
		return r.Outcome, nil
	case functions.MembershipResult:
		want := functions.MembershipResult{
			MembershipID:   strings.TrimSpace(e.mem.ID),
			OrganizationID: strings.TrimSpace(e.mem.Organization.ID),
			UserID:         strings.TrimSpace(e.mem.PublicUserData.UserID),
			Outcome:        r.Outcome,
		}
		if !e.isMembership() || r != want {
			return "", fmt.Errorf("result %+v; want %+v", r, want)
		}
		return r.Outcome, nil
	}
	return "", fmt.Errorf("result is %T, not an OrganizationResult or MembershipResult", res)
}

// mustSendOrg sends the event and fails the test on an error. If want is not empty, it also
// fails unless the function reports that outcome.
func (h *harness) mustSendOrg(e orgEvent, want store.Outcome) {
	h.t.Helper()
	got, err := h.sendOrg(e)
	if err != nil {
		h.t.Fatalf("%s = %v; want outcome %s", e, err, want)
	}
	if want != "" && got != want {
		h.t.Errorf("%s outcome = %s; want %s", e, got, want)
	}
}

// getOrg reads a stored organization, failing the test when it cannot.
func (h *harness) getOrg(id string) store.Organization {
	h.t.Helper()
	o, err := h.st.GetOrganization(h.ctx, id)
	if err != nil {
		h.t.Fatalf("GetOrganization(%s) = %v", id, err)
	}
	return o
}

// getMembership reads a stored membership, failing the test when it cannot.
func (h *harness) getMembership(id string) store.Membership {
	h.t.Helper()
	m, err := h.st.GetMembership(h.ctx, id)
	if err != nil {
		h.t.Fatalf("GetMembership(%s) = %v", id, err)
	}
	return m
}

// checkNotLive fails unless no live membership of userID in orgID is stored, and the membership
// id, when stored, is deleted.
func (h *harness) checkNotLive(id, orgID, userID string) {
	h.t.Helper()
	live, err := h.st.LiveMemberships(h.ctx, orgID, userID)
	if err != nil {
		h.t.Fatalf("LiveMemberships(%s, %s) = %v", orgID, userID, err)
	}
	if len(live) != 0 {
		h.t.Errorf("LiveMemberships(%s, %s) = %+v; want none", orgID, userID, live)
	}
	m, err := h.st.GetMembership(h.ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		h.t.Fatalf("GetMembership(%s) = %v", id, err)
	case !m.Deleted:
		h.t.Errorf("GetMembership(%s) = %+v; want it deleted or absent", id, m)
	}
}

// checkLive fails unless the membership want is stored, live, and is the one live membership of
// its user in its organization.
func (h *harness) checkLive(want store.Membership) {
	h.t.Helper()
	if got := h.getMembership(want.ID); !reflect.DeepEqual(got, want) {
		h.t.Errorf("GetMembership(%s) = %+v\nwant %+v", want.ID, got, want)
	}
	live, err := h.st.LiveMemberships(h.ctx, want.OrgID, want.UserID)
	if err != nil || len(live) != 1 || live[0].ID != want.ID {
		h.t.Errorf("LiveMemberships(%s, %s) = %+v, %v; want %s alone", want.OrgID, want.UserID, live, err, want.ID)
	}
}

// checkOrgTombstone fails unless o is a deleted organization, deleted at deletedAt, that keeps
// no name, slug, image or creator.
func checkOrgTombstone(t *testing.T, o store.Organization, deletedAt int64) {
	t.Helper()
	if !o.Deleted || o.DeletedAt != deletedAt || o.Name != "" || o.Slug != "" || o.ImageURL != "" || o.CreatedBy != "" {
		t.Errorf("GetOrganization(%s) = %+v; want deleted at %d, with no name, slug, image_url or created_by", o.ID, o, deletedAt)
	}
}

// checkMembershipTombstone fails unless m is a deleted membership, deleted at deletedAt, that
// keeps no organization, user or role.
func checkMembershipTombstone(t *testing.T, m store.Membership, deletedAt int64) {
	t.Helper()
	if !m.Deleted || m.DeletedAt != deletedAt || m.OrgID != "" || m.UserID != "" || m.Role != "" {
		t.Errorf("GetMembership(%s) = %+v; want deleted at %d, with no org_id, user_id or role", m.ID, m, deletedAt)
	}
}

// clerkOrg returns a Clerk organization.
func clerkOrg(id, name, slug string, updatedAt int64) clerk.Organization {
	return clerk.Organization{ID: id, Name: name, Slug: slug, ImageURL: "https://img.example/" + slug,
		CreatedBy: "user_creator", CreatedAt: 1_600_000_000_000, UpdatedAt: updatedAt}
}

// storedOrg is what clerkOrg(id, name, slug, updatedAt) is stored as.
func storedOrg(id, name, slug string, updatedAt int64) store.Organization {
	return store.Organization{ID: id, Name: name, Slug: slug, ImageURL: "https://img.example/" + slug,
		CreatedBy: "user_creator", CreatedAt: 1_600_000_000_000, UpdatedAt: updatedAt}
}

// clerkMember returns a Clerk membership of userID in orgID, with the member's public data.
func clerkMember(id, orgID, userID, role string, updatedAt int64) clerk.OrganizationMembership {
	return clerk.OrganizationMembership{ID: id, Role: role,
		Organization: clerk.MembershipOrganization{ID: orgID}, PublicUserData: clerk.PublicUserData{UserID: userID},
		CreatedAt: 1_600_000_000_000, UpdatedAt: updatedAt}
}

// storedMember is what clerkMember(id, orgID, userID, role, updatedAt) is stored as.
func storedMember(id, orgID, userID, role string, updatedAt int64) store.Membership {
	return store.Membership{ID: id, OrgID: orgID, UserID: userID, Role: role, CreatedAt: 1_600_000_000_000, UpdatedAt: updatedAt}
}

// exampleOrgEvent reads one of Clerk's example organization or membership payloads as the
// event the bridge would send: named after Clerk's type, with the timestamp in milliseconds.
func exampleOrgEvent(t *testing.T, file string) orgEvent {
	t.Helper()
	body, err := os.ReadFile(filepath.Join(examplesDir, file))
	if err != nil {
		t.Fatal(err)
	}
	var env struct {
		Type      string          `json:"type"`
		Timestamp int64           `json:"timestamp"`
		Data      json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	ts := env.Timestamp
	if ts < 100_000_000_000 {
		ts *= 1000
	}
	e := orgEvent{name: clerkevent.Name(env.Type), ts: ts}
	data := any(&e.org)
	if e.isMembership() {
		data = &e.mem
	}
	if err := json.Unmarshal(env.Data, data); err != nil {
		t.Fatalf("%s: data: %v", file, err)
	}
	return e
}

// TestOrgExamples: Clerk's example organization and membership payloads, delivered in the
// order given.
func TestOrgExamples(t *testing.T) {
	t.Parallel()
	const (
		orgID    = "org_2g7np7Hrk0SN6kj5EDMLDaKNL0S"
		memID    = "orgmem_2g7np7Hrk0SN6kj5EDMLDaKNL0S"
		memberID = "user_2h8op3Isl1QR7tKu5FGNfaLKEoU"
		deleteTS = int64(1716883200000) // the deletions' ts
	)
	acme := store.Organization{ID: orgID, Name: "Acme Corp", Slug: "acme-corp", ImageURL: "https://img.clerk.com/xxxxxx",
		CreatedBy: "user_2g7np7Hrk0SN6kj5EDMLDaKNL0S", CreatedAt: 1716883200000, UpdatedAt: 1716883200000}
	acmeUpdated := store.Organization{ID: orgID, Name: "Acme Corp Updated", Slug: "acme-corp-updated", ImageURL: "https://img.clerk.com/yyyyyy",
		CreatedBy: "user_2g7np7Hrk0SN6kj5EDMLDaKNL0S", CreatedAt: 1716883200000, UpdatedAt: 1716883500000}
	member := store.Membership{ID: memID, OrgID: orgID, UserID: memberID, Role: "org:member", CreatedAt: 1716883200000, UpdatedAt: 1716883200000}
	admin := member
	admin.Role, admin.UpdatedAt = "org:admin", 1716883500000

	const (
		orgC, orgU, orgD = "openapi-organization.created.json", "openapi-organization.updated.json", "openapi-organization.deleted.json"
		memC, memU, memD = "openapi-organizationMembership.created.json", "openapi-organizationMembership.updated.json", "openapi-organizationMembership.deleted.json"
	)
	tests := []struct {
		name     string
		files    []string
		outcomes []store.Outcome
		check    func(h *harness)
	}{{
		name:     "organization created, updated",
		files:    []string{orgC, orgU},
		outcomes: []store.Outcome{store.Inserted, store.Updated},
		check: func(h *harness) {
			if got := h.getOrg(orgID); got != acmeUpdated {
				h.t.Errorf("GetOrganization = %+v\nwant %+v", got, acmeUpdated)
			}
		},
	}, {
		name:     "organization updated, then the older create",
		files:    []string{orgU, orgC},
		outcomes: []store.Outcome{store.Inserted, store.Skipped},
		check: func(h *harness) {
			if got := h.getOrg(orgID); got != acmeUpdated {
				h.t.Errorf("GetOrganization = %+v\nwant %+v", got, acmeUpdated)
			}
		},
	}, {
		name:     "organization created alone",
		files:    []string{orgC},
		outcomes: []store.Outcome{store.Inserted},
		check: func(h *harness) {
			if got := h.getOrg(orgID); got != acme {
				h.t.Errorf("GetOrganization = %+v\nwant %+v", got, acme)
			}
		},
	}, {
		name:     "organization created, updated, deleted, then replayed",
		files:    []string{orgC, orgU, orgD, orgC, orgU, orgD},
		outcomes: []store.Outcome{store.Inserted, store.Updated, store.Deleted, store.Skipped, store.Skipped, store.AlreadyDeleted},
		check:    func(h *harness) { checkOrgTombstone(h.t, h.getOrg(orgID), deleteTS) },
	}, {
		name:     "membership created, updated",
		files:    []string{orgC, memC, memU},
		outcomes: []store.Outcome{store.Inserted, store.Inserted, store.Updated},
		check:    func(h *harness) { h.checkLive(admin) },
	}, {
		name:     "membership updated before its create",
		files:    []string{memU, memC, orgC},
		outcomes: []store.Outcome{store.Inserted, store.Skipped, store.Inserted},
		check:    func(h *harness) { h.checkLive(admin) },
	}, {
		name:     "membership created alone",
		files:    []string{memC},
		outcomes: []store.Outcome{store.Inserted},
		check:    func(h *harness) { h.checkLive(member) },
	}, {
		// The deletion carries the membership as it was created (an older updated_at than the
		// role change): a deletion is final whatever its data says.
		name:     "membership created, updated, deleted, then replayed",
		files:    []string{orgC, memC, memU, memD, memC, memU, memD},
		outcomes: []store.Outcome{store.Inserted, store.Inserted, store.Updated, store.Deleted, store.Skipped, store.Skipped, store.AlreadyDeleted},
		check: func(h *harness) {
			checkMembershipTombstone(h.t, h.getMembership(memID), deleteTS)
			h.checkNotLive(memID, orgID, memberID)
			if got := h.getOrg(orgID); got != acme {
				h.t.Errorf("GetOrganization = %+v; want it live and unchanged: %+v", got, acme)
			}
		},
	}, {
		name:  "organization and membership in order, then the organization's deletion ends the membership",
		files: []string{orgC, orgU, memC, memU, orgD},
		// The membership's outcomes are the store's; the end state is checked.
		outcomes: []store.Outcome{store.Inserted, store.Updated, store.Inserted, store.Updated, store.Deleted},
		check: func(h *harness) {
			checkOrgTombstone(h.t, h.getOrg(orgID), deleteTS)
			h.checkNotLive(memID, orgID, memberID)
		},
	}, {
		name:     "membership events after the organization's deletion",
		files:    []string{orgC, orgD, memC, memU},
		outcomes: []store.Outcome{store.Inserted, store.Deleted, "", ""},
		check: func(h *harness) {
			checkOrgTombstone(h.t, h.getOrg(orgID), deleteTS)
			h.checkNotLive(memID, orgID, memberID)
		},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			eachMode(t, func(t *testing.T, h *harness) {
				for i, f := range tc.files {
					h.mustSendOrg(exampleOrgEvent(t, f), tc.outcomes[i])
				}
				tc.check(h)
			})
		})
	}
}

// TestUnusableOrgEventsNotRetried: organization and membership events without their ids (or
// anything to order them by) fail with a NoRetryError and write nothing.
func TestUnusableOrgEventsNotRetried(t *testing.T) {
	t.Parallel()
	noTS := clerkOrg("org_nots", "No", "nots", 0)
	memNoTS := clerkMember("orgmem_nots", "org_1", "user_1", "org:member", 0)
	tests := []struct {
		name string
		e    orgEvent
		want error
	}{
		{"organization create without id", orgCreated(clerkOrg("", "No Id", "noid", t1)), clerk.ErrBadOrganization},
		{"organization update with blank id", orgUpdated(clerkOrg(" \t", "No Id", "noid", t1)), clerk.ErrBadOrganization},
		{"organization create without updated_at or ts", orgEvent{name: clerkevent.OrganizationCreated, org: noTS}, clerk.ErrBadOrganization},
		{"organization delete without id", orgDeleted("", t1), clerk.ErrBadOrganization},
		{"membership create without id", memCreated(clerkMember("", "org_1", "user_1", "org:member", t1)), clerk.ErrBadMembership},
		{"membership create without organization id", memCreated(clerkMember("orgmem_noorg", "", "user_1", "org:member", t1)), clerk.ErrBadMembership},
		{"membership update without user id", memUpdated(clerkMember("orgmem_nouser", "org_1", " ", "org:member", t1)), clerk.ErrBadMembership},
		{"membership update without updated_at or ts", orgEvent{name: clerkevent.MembershipUpdated, mem: memNoTS}, clerk.ErrBadMembership},
		{"membership delete without id", memDeleted(clerkMember("", "org_1", "user_1", "org:member", t1), t2), clerk.ErrBadMembership},
	}
	h := newHarness(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := h.sub(t).sendOrg(tc.e)
			if err == nil || !inngesterrors.IsNoRetryError(err) || !errors.Is(err, tc.want) {
				t.Errorf("%s error = %v (no-retry %t); want a NoRetryError wrapping %v", tc.e, err, inngesterrors.IsNoRetryError(err), tc.want)
			}
		})
	}
	for _, id := range []string{"org_nots", "org_1"} {
		if o, err := h.st.GetOrganization(h.ctx, id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetOrganization(%s) = %+v, %v; want ErrNotFound (nothing written)", id, o, err)
		}
	}
	for _, id := range []string{"orgmem_noorg", "orgmem_nouser", "orgmem_nots"} {
		if m, err := h.st.GetMembership(h.ctx, id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetMembership(%s) = %+v, %v; want ErrNotFound (nothing written)", id, m, err)
		}
	}
	// A membership deletion needs nothing but the membership's id.
	h.mustSendOrg(memDeleted(clerk.OrganizationMembership{ID: "orgmem_bare"}, t2), store.Deleted)
}

// TestOrgDatabaseDownIsRetried: when the database fails, each organization and membership
// function returns an ordinary error, so that Inngest retries it.
func TestOrgDatabaseDownIsRetried(t *testing.T) {
	t.Parallel()
	o := clerkOrg("org_dbdown", "Down", "down", t1)
	m := clerkMember("orgmem_dbdown", "org_dbdown", "user_dbdown", "org:member", t1)
	for _, e := range []orgEvent{orgCreated(o), orgUpdated(o), orgDeleted(o.ID, t2), memCreated(m), memUpdated(m), memDeleted(m, t2)} {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			if err := h.st.Close(context.Background()); err != nil {
				t.Fatalf("Close = %v", err)
			}
			out, err := h.sendOrg(e)
			if err == nil || inngesterrors.IsNoRetryError(err) {
				t.Errorf("%s = %q, %v (no-retry %t); want a retryable error", e, out, err, inngesterrors.IsNoRetryError(err))
			}
			if !errors.Is(err, store.ErrDatabase) {
				t.Errorf("%s error = %v; want one wrapping store.ErrDatabase", e, err)
			}
		})
	}
}

// TestOrgFunctionRunMetrics: every attempt of an organization or membership function is counted
// with its outcome.
func TestOrgFunctionRunMetrics(t *testing.T) {
	t.Parallel()
	m := &countingMetrics{}
	st := openStore(t)
	h := &harness{t: t, ctx: t.Context(), st: st, fns: functions.New(st, st, slog.New(slog.DiscardHandler), functions.Config{AppID: testAppID, Metrics: m})}
	mem := clerkMember("orgmem_metrics", "org_metrics", "user_metrics", "org:member", t1)
	steps := []struct {
		e       orgEvent
		wantErr bool
	}{
		{orgCreated(clerkOrg("org_metrics", "Met", "met", t1)), false},
		{orgCreated(clerkOrg("org_metrics", "Met", "met", t1)), false}, // replay: skipped
		{orgUpdated(clerkOrg("org_metrics", "Met Two", "met", t2)), false},
		{orgCreated(clerkOrg("", "No Id", "", t1)), true},
		{memCreated(mem), false},
		{memUpdated(clerkMember("orgmem_metrics", "org_metrics", "user_metrics", "org:admin", t2)), false},
		{memUpdated(clerkMember("orgmem_metrics", "", "user_metrics", "org:admin", t3)), true},
		{memDeleted(mem, t3), false},
		{memDeleted(mem, t3), false}, // already deleted
		{memDeleted(clerk.OrganizationMembership{}, t3), true},
		{orgDeleted("org_metrics", t3), false},
		{orgDeleted("org_metrics", t3), false}, // already deleted
		{orgDeleted(" ", t3), true},
	}
	for _, s := range steps {
		if _, err := h.sendOrg(s.e); (err != nil) != s.wantErr {
			t.Fatalf("%s = %v; want error %t", s.e, err, s.wantErr)
		}
	}
	_ = st.Close(context.Background())
	if _, err := h.sendOrg(memCreated(clerkMember("orgmem_metrics2", "org_metrics", "user_2", "org:member", t1))); err == nil {
		t.Fatalf("SyncMembership with the database closed = nil; want an error")
	}
	want := map[string]int{
		functions.SyncOrganizationID + "/inserted":          1,
		functions.SyncOrganizationID + "/skipped":           1,
		functions.SyncOrganizationID + "/invalid":           1,
		functions.UpdateOrganizationID + "/updated":         1,
		functions.DeleteOrganizationID + "/deleted":         1,
		functions.DeleteOrganizationID + "/already_deleted": 1,
		functions.DeleteOrganizationID + "/invalid":         1,
		functions.SyncMembershipID + "/inserted":            1,
		functions.SyncMembershipID + "/error":               1,
		functions.UpdateMembershipID + "/updated":           1,
		functions.UpdateMembershipID + "/invalid":           1,
		functions.DeleteMembershipID + "/deleted":           1,
		functions.DeleteMembershipID + "/already_deleted":   1,
		functions.DeleteMembershipID + "/invalid":           1,
	}
	if got := m.snapshot(); !reflect.DeepEqual(got, want) {
		t.Errorf("FunctionRun calls = %v; want %v", got, want)
	}
}

// TestOrgRunLogs: a run's log line carries the ids that tie it to the webhook delivery, the
// Inngest event, the organization, the membership and the user.
func TestOrgRunLogs(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	var logs strings.Builder
	fns := functions.New(st, st, slog.New(slog.NewTextHandler(&logs, nil)), functions.Config{AppID: testAppID})
	h := &harness{t: t, ctx: t.Context(), st: st, fns: fns}
	h.mustSendOrg(memCreated(clerkMember("orgmem_logs", "org_logs", "user_logs", "org:member", t1)), store.Inserted)
	h.mustSendOrg(orgDeleted("org_logs", t2), store.Deleted)
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d log lines; want 2:\n%s", len(lines), logs.String())
	}
	for i, want := range [][]string{
		{"function=" + functions.SyncMembershipID, "event_id=clerk-msg_", "svix_id=msg_", "org_id=org_logs", "membership_id=orgmem_logs", "user_id=user_logs", "outcome=inserted"},
		{"function=" + functions.DeleteOrganizationID, "event_id=clerk-msg_", "svix_id=msg_", "org_id=org_logs", "outcome=deleted"},
	} {
		for _, w := range want {
			if !strings.Contains(lines[i], w) {
				t.Errorf("log line %q does not contain %q", lines[i], w)
			}
		}
	}
}
