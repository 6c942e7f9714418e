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

// The tests of batched runs (INNGEST_BATCH_SIZE) through the real dev server. A call log
// (stackOptions.countCalls) shows which events each run held, and each run's attempts.

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
func (s *stack) waitBatchRun(t *testing.T, first, second string) (batchRun, []fnCall) {
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
	stacks(t)
	s := startStack(t, stackOptions{countCalls: true, env: map[string]string{"INNGEST_BATCH_SIZE": "2"}})
	stamp := time.Now().UnixNano()

	t.Run("SameDeliveryTwice", func(t *testing.T) {
		msgID := fmt.Sprintf("msg_batch_dup_%d", stamp)
		eventID := event.ID(msgID)
		body := clerkUserEvent("user.created", "user_batch_dup", "Dup", "batchdup@example.org", 1700000000001)
		s.mustPost(t, body, msgID, http.StatusOK)
		s.mustPost(t, body, msgID, http.StatusOK) // Svix retrying the delivery
		run, calls := s.waitBatchRun(t, eventID, eventID)
		if len(calls) == 0 || len(calls[0].EventIDs) != 2 {
			t.Fatalf("calls of run %s = %+v; want the batch to hold both events", run.RunID, calls)
		}
		// One write: one result for the delivery, the other event listed as its duplicate.
		w := run.Output.Written
		if run.Status != "Completed" || len(w) != 1 || w[0].UserID != "user_batch_dup" || w[0].Outcome != string(store.Inserted) ||
			len(run.Output.Duplicates) != 1 || run.Output.Duplicates[0] != eventID {
			t.Errorf("batch run = %+v; want Completed, written once (user_batch_dup inserted), duplicates [%s]", run, eventID)
		}
		s.waitUser(t, "user_batch_dup", time.Second, func(u store.User, err error) bool { return err == nil && u.FullName == "Dup Tester" })
	})

	t.Run("MalformedEventInABatch", func(t *testing.T) {
		good, bad := fmt.Sprintf("msg_batch_good_%d", stamp), fmt.Sprintf("msg_batch_bad_%d", stamp)
		s.mustPost(t, clerkUserEvent("user.created", "user_batch_good", "Good", "batchgood@example.org", 1700000000001), good, http.StatusOK)
		s.mustPost(t, []byte(`{"object":"event","type":"user.created","timestamp":1700000000001,"data":`+
			`{"object":"user","id":"user_batch_bad","email_addresses":{"id":"idn_1","email_address":"b@example.org"},"updated_at":1700000000001}}`), bad, http.StatusOK)
		run, calls := s.waitBatchRun(t, event.ID(good), event.ID(bad))
		for _, c := range calls {
			if c.Attempt != 0 {
				t.Errorf("calls of run %s = %+v; want every call on attempt 0 (no retry)", run.RunID, calls)
				break
			}
		}
		if run.Status != "Completed" || len(run.Output.Written) != 1 || len(run.Output.Failed) != 1 || run.Output.Failed[0].EventID != event.ID(bad) {
			t.Errorf("batch run = %+v; want Completed, the good event written and the malformed one failed", run)
		}
		s.waitUser(t, "user_batch_good", time.Second, func(u store.User, err error) bool { return err == nil && u.FullName == "Good Tester" })
		if _, err := s.store.Get(t.Context(), "user_batch_bad"); err != store.ErrNotFound {
			t.Errorf("Get(user_batch_bad) = %v; want ErrNotFound", err)
		}
		f := s.waitOneFailure(t, event.ID(bad))
		if f.RunID != run.RunID || f.FunctionID != "clerk-user-sync-"+functions.SyncUserID || f.UserID != "user_batch_bad" ||
			!strings.Contains(f.Error, clerk.ErrBadUser.Error()) || !strings.Contains(f.Error, "cannot be read") {
			t.Errorf("recorded failure = %+v; want run %s, function %s, user user_batch_bad, an error saying the data cannot be read", f, run.RunID, functions.SyncUserID)
		}
		if got, err := s.failuresFor(event.ID(good)); err != nil || len(got) != 0 {
			t.Errorf("failures of the good event = %+v, %v; want none", got, err)
		}
	})
}
