package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"clerksync/clerk"
	"clerksync/clerk/event"
	"clerksync/functions"
	"clerksync/store"
)

// The tests of events whose data the functions cannot read, through the real dev server. The
// call log (stackOptions.countCalls) counts the attempts of each run.

// malformed is a webhook of a handled type whose data the webhook bridge forwards (valid JSON,
// data an object) but no function can decode into its Clerk object.
type malformed struct {
	name     string
	typ      string // Clerk's event type
	data     string
	function string // the function the event runs
	userID   string // the user id record-sync-failure reads from the data ("" for none)
	bad      error  // what the recorded error says
}

var malformedEvents = []malformed{
	{"user id a number", "user.created", `{"object":"user","id":42,"first_name":"N","email_addresses":[],"updated_at":1700000000000}`,
		functions.SyncUserID, "", clerk.ErrBadUser},
	{"email_addresses an object", "user.updated", `{"object":"user","id":"user_malformed_emails","primary_email_address_id":"idn_1","email_addresses":{"id":"idn_1","email_address":"m@example.org"},"updated_at":1700000000000}`,
		functions.UpdateUserID, "user_malformed_emails", clerk.ErrBadUser},
	{"deleted user id a number", "user.deleted", `{"object":"user","id":42,"deleted":true}`,
		functions.DeleteUserID, "", clerk.ErrBadUser},
	{"organization updated_at a string", "organization.created", `{"object":"organization","id":"org_malformed","name":"M","updated_at":"yesterday"}`,
		functions.SyncOrganizationID, "", clerk.ErrBadOrganization},
	{"deleted organization id a number", "organization.deleted", `{"object":"organization","id":42,"deleted":true}`,
		functions.DeleteOrganizationID, "", clerk.ErrBadOrganization},
	{"membership role a number", "organizationMembership.updated", `{"object":"organization_membership","id":"orgmem_malformed","role":7,"organization":{"id":"org_malformed_m"},"public_user_data":{"user_id":"user_malformed_m"},"updated_at":1700000000000}`,
		functions.UpdateMembershipID, "user_malformed_m", clerk.ErrBadMembership},
}

// testMalformedEventData: an event whose data its function cannot decode fails its run on
// the first attempt, not after Inngest's 10 retries, and record-sync-failure stores it in
// sync_failures once, with an error that says why and names the event.
func (s *stack) testMalformedEventData(t *testing.T) {
	stamp := time.Now().UnixNano()
	msgID := func(i int) string { return fmt.Sprintf("msg_malformed_%d_%d", i, stamp) }
	// All at once: on a version that retries them, their retries overlap.
	for i, m := range malformedEvents {
		body := fmt.Sprintf(`{"object":"event","type":%q,"timestamp":1700000000000,"data":%s}`, m.typ, m.data)
		s.mustPost(t, []byte(body), msgID(i), http.StatusOK)
	}
	// Readable events beside them, one per kind of data, are written as ever.
	readable := []struct {
		name, body string
		msgID      string
	}{
		{event.UserCreated, string(clerkUserEvent("user.created", "user_readable", "Read", "read@example.org", 1700000000000)), fmt.Sprintf("msg_readable_user_%d", stamp)},
		{event.OrganizationCreated, string(orgEvent("organization.created", "org_readable", "readable", 1700000000000)), fmt.Sprintf("msg_readable_org_%d", stamp)},
		{event.MembershipCreated, string(membershipEvent("organizationMembership.created", "orgmem_readable", "org_readable", "user_readable", "org:member", 1700000000000)), fmt.Sprintf("msg_readable_mem_%d", stamp)},
	}
	for _, r := range readable {
		s.mustPost(t, []byte(r.body), r.msgID, http.StatusOK)
	}
	for i, m := range malformedEvents {
		t.Run(m.name, func(t *testing.T) {
			eventID := event.ID(msgID(i))
			runs := s.waitRunsSettled(t, eventID)
			if len(runs) != 1 || runs[0].Status != "Failed" {
				t.Fatalf("runs of %s for %s = %+v; want one, Failed", m.function, eventID, runs)
			}
			calls := s.callsOf(runs[0].RunID)
			if len(calls) != 1 || calls[0].Attempt != 0 || !calls[0].NoRetry {
				t.Errorf("calls of run %s (%s) = %+v; want exactly one, attempt 0, answered not to retry", runs[0].RunID, m.function, calls)
			}
			f := s.waitOneFailure(t, eventID)
			if f.RunID != runs[0].RunID || f.FunctionID != "clerk-user-sync-"+m.function || f.EventName != event.Name(m.typ) || f.UserID != m.userID {
				t.Errorf("recorded failure = %+v; want run %s, function clerk-user-sync-%s, event %s, user id %q", f, runs[0].RunID, m.function, event.Name(m.typ), m.userID)
			}
			if !strings.Contains(f.Error, m.bad.Error()) || !strings.Contains(f.Error, eventID) || !strings.Contains(f.Error, "cannot be read") {
				t.Errorf("recorded error = %q; want it to say %q, that the data cannot be read, and name event %s", f.Error, m.bad, eventID)
			}
		})
	}
	t.Run("ReadableEventsBesideThem", func(t *testing.T) {
		for _, r := range readable {
			eventID := event.ID(r.msgID)
			runs := s.waitRunsSettled(t, eventID)
			if len(runs) != 1 || runs[0].Status != "Completed" || runs[0].Output.Outcome != string(store.Inserted) {
				t.Errorf("runs for %s (%s) = %+v; want one, Completed, with outcome inserted", eventID, r.name, runs)
				continue
			}
			calls := s.callsOf(runs[0].RunID)
			if len(calls) == 0 {
				t.Errorf("calls of run %s (%s): none; want at least one", runs[0].RunID, r.name)
			}
			for _, c := range calls {
				if c.Attempt != 0 {
					t.Errorf("calls of run %s (%s) = %+v; want every call on attempt 0", runs[0].RunID, r.name, s.callsOf(runs[0].RunID))
					break
				}
			}
		}
	})
	if _, err := s.store.Get(t.Context(), "user_malformed_emails"); err != store.ErrNotFound {
		t.Errorf("Get(user_malformed_emails) = %v; want ErrNotFound (nothing written)", err)
	}
}
