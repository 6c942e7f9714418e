package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"clerksync/clerk"
	"clerksync/functions"
	"clerksync/store"
)

// The tests of events whose data the functions cannot read, and of batches, through the real
// dev server. A call log (stackOptions.countCalls) counts the attempts of each run.

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

// TestMalformedEventDataFailsAtOnce: an event whose data its function cannot decode fails its
// run on the first attempt, not after Inngest's 10 retries, and record-sync-failure stores it
// in sync_failures once, with an error that says why and names the event.
func TestMalformedEventDataFailsAtOnce(t *testing.T) {
	s := startStackWith(t, stackOptions{countCalls: true})
	since := time.Now().Add(-2 * time.Second)
	stamp := time.Now().UnixNano()
	msgID := func(i int) string { return fmt.Sprintf("msg_malformed_%d_%d", i, stamp) }
	// All at once: on a version that retries them, their retries overlap.
	for i, m := range malformedEvents {
		body := fmt.Sprintf(`{"object":"event","type":%q,"timestamp":1700000000000,"data":%s}`, m.typ, m.data)
		s.mustPost([]byte(body), msgID(i), http.StatusOK)
	}
	for i, m := range malformedEvents {
		t.Run(m.name, func(t *testing.T) {
			s.t = t
			eventID := clerk.EventID(msgID(i))
			runs := s.waitRunsSettled(clerk.EventName(m.typ), eventID, since, 1)
			if len(runs) != 1 || runs[0].Status != "Failed" {
				t.Fatalf("runs of %s for %s = %+v; want one, Failed", m.function, eventID, runs)
			}
			calls := s.calls.forRun(runs[0].RunID)
			if len(calls) != 1 || calls[0].Attempt != 0 || !calls[0].NoRetry {
				t.Errorf("calls of run %s (%s) = %+v; want exactly one, attempt 0, answered not to retry", runs[0].RunID, m.function, calls)
			}
			f := s.waitOneFailure(eventID)
			if f.RunID != runs[0].RunID || f.FunctionID != "clerk-user-sync-"+m.function || f.EventName != clerk.EventName(m.typ) || f.UserID != m.userID {
				t.Errorf("recorded failure = %+v; want run %s, function clerk-user-sync-%s, event %s, user id %q", f, runs[0].RunID, m.function, clerk.EventName(m.typ), m.userID)
			}
			if !strings.Contains(f.Error, m.bad.Error()) || !strings.Contains(f.Error, eventID) || !strings.Contains(f.Error, "cannot be read") {
				t.Errorf("recorded error = %q; want it to say %q, that the data cannot be read, and name event %s", f.Error, m.bad, eventID)
			}
		})
	}
	if _, err := s.users.Get(t.Context(), "user_malformed_emails"); err != store.ErrNotFound {
		t.Errorf("Get(user_malformed_emails) = %v; want ErrNotFound (nothing written)", err)
	}
}

// waitOneFailure waits until sync_failures has a failure for eventID, gives a duplicate time
// to land, and returns the one failure, failing the test unless there is exactly one.
func (s *stack) waitOneFailure(eventID string) store.Failure {
	t := s.t
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		got, err := s.failuresFor(eventID)
		if err == nil && len(got) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no failure recorded for %s after 60s (last error %v); dev server log:\n%s", eventID, err, s.devLog())
		}
		time.Sleep(200 * time.Millisecond)
	}
	// The dev server's REST API does not list the recorder's runs: give a duplicate, if any,
	// time to land.
	time.Sleep(2 * time.Second)
	got, err := s.failuresFor(eventID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("%d failures recorded for %s; want exactly 1: %+v", len(got), eventID, got)
	}
	return got[0]
}

// batchRun is a batched run as the dev server shows it, with its output: the functions'
// BatchResult.
type batchRun struct {
	RunID  string `json:"run_id"`
	Status string `json:"status"`
	Output struct {
		Written []struct {
			UserID  string `json:"user_id"`
			Outcome string `json:"outcome"`
		} `json:"written"`
		Failed []struct {
			EventID string `json:"event_id"`
		} `json:"failed"`
		Duplicates []string `json:"duplicates"`
	} `json:"output"`
}

// waitBatchRun waits until the call log has seen exactly one run with both events, and that
// run has ended; it returns the run and its calls. Both events must have landed in one batch.
func (s *stack) waitBatchRun(first, second string) (batchRun, []fnCall) {
	t := s.t
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var run batchRun
		ids := s.calls.runsWith(first)
		if len(ids) == 1 {
			err := s.devGet("/v1/runs/"+ids[0], &run)
			if err == nil && (run.Status == "Completed" || run.Status == "Failed" || run.Status == "Cancelled") {
				if others := s.calls.runsWith(second); len(others) != 1 || others[0] != ids[0] {
					t.Fatalf("events %s and %s ran in runs %v and %v; want both in one batch run", first, second, ids, others)
				}
				return run, s.calls.forRun(ids[0])
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("event %s: runs %v, last state %+v after 60s; want one ended run; dev server log:\n%s", first, ids, run, s.devLog())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestBatchesThroughTheDevServer: with INNGEST_BATCH_SIZE above 1, Inngest hands a batched
// function every event it receives, duplicates of an event id included; the functions write a
// delivery received twice once, and record a malformed event of a batch without holding back
// or retrying the rest.
func TestBatchesThroughTheDevServer(t *testing.T) {
	s := startStackWith(t, stackOptions{countCalls: true, env: map[string]string{"INNGEST_BATCH_SIZE": "2"}})
	stamp := time.Now().UnixNano()

	t.Run("MalformedEventInABatch", func(t *testing.T) {
		s.t = t
		good, bad := fmt.Sprintf("msg_batch_good_%d", stamp), fmt.Sprintf("msg_batch_bad_%d", stamp)
		s.mustPost(clerkUserEvent("user.created", "user_batch_good", "Good", "batchgood@example.org", 1700000000001), good, http.StatusOK)
		s.mustPost([]byte(`{"object":"event","type":"user.created","timestamp":1700000000001,"data":`+
			`{"object":"user","id":"user_batch_bad","email_addresses":{"id":"idn_1","email_address":"b@example.org"},"updated_at":1700000000001}}`), bad, http.StatusOK)
		run, calls := s.waitBatchRun(clerk.EventID(good), clerk.EventID(bad))
		for _, c := range calls {
			if c.Attempt != 0 {
				t.Errorf("calls of run %s = %+v; want every call on attempt 0 (no retry)", run.RunID, calls)
				break
			}
		}
		if run.Status != "Completed" || len(run.Output.Written) != 1 || len(run.Output.Failed) != 1 || run.Output.Failed[0].EventID != clerk.EventID(bad) {
			t.Errorf("batch run = %+v; want Completed, the good event written and the malformed one failed", run)
		}
		s.waitUser("user_batch_good", time.Second, func(u store.User, err error) bool { return err == nil && u.FullName == "Good Tester" })
		if _, err := s.users.Get(t.Context(), "user_batch_bad"); err != store.ErrNotFound {
			t.Errorf("Get(user_batch_bad) = %v; want ErrNotFound", err)
		}
		f := s.waitOneFailure(clerk.EventID(bad))
		if f.RunID != run.RunID || f.FunctionID != "clerk-user-sync-"+functions.SyncUserID || f.UserID != "user_batch_bad" ||
			!strings.Contains(f.Error, clerk.ErrBadUser.Error()) || !strings.Contains(f.Error, "cannot be read") {
			t.Errorf("recorded failure = %+v; want run %s, function %s, user user_batch_bad, an error saying the data cannot be read", f, run.RunID, functions.SyncUserID)
		}
		if got, err := s.failuresFor(clerk.EventID(good)); err != nil || len(got) != 0 {
			t.Errorf("failures of the good event = %+v, %v; want none", got, err)
		}
	})
}

// String shows a call for failure messages.
func (c fnCall) String() string {
	b, _ := json.Marshal(c)
	return string(b)
}
