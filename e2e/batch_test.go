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

// waitBatchRun waits until the call log shows where the two events ran. If both ran in one
// run and it has ended, it returns the run, its calls and true; if they ran in different runs
// (or an event id ran twice), false: the batch window (functions.Config.BatchWait, 1 s) closed
// between them, which a loaded machine can make happen however close together they were sent.
func (s *stack) waitBatchRun(t *testing.T, first, second string) (batchRun, []fnCall, bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var run batchRun
		a, b := s.calls.runsWith(first), s.calls.runsWith(second)
		if len(a) > 1 || len(b) > 1 || (len(a) == 1 && len(b) == 1 && a[0] != b[0]) {
			return run, nil, false
		}
		if len(a) == 1 && len(b) == 1 {
			err := s.devGet("/v1/runs/"+a[0], &run)
			if err == nil && (run.Status == "Completed" || run.Status == "Failed" || run.Status == "Cancelled") {
				return run, s.calls.forRun(a[0]), true
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("events %s and %s: runs %v and %v, last state %+v after 60s; want one ended run; dev server log:\n%s", first, second, a, b, run, s.devLog())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// batchOf posts a pair of deliveries with post (given the try, from 1, so that each try uses
// ids of its own) and returns the batch run that held both events (by their Inngest ids). A
// pair that the batch window split across two runs tests nothing here, so it tries again, up
// to 3 times; it fails the test if no try put the pair in one run.
func (s *stack) batchOf(t *testing.T, post func(try int) (first, second string)) (batchRun, []fnCall) {
	t.Helper()
	const tries = 3
	for try := 1; try <= tries; try++ {
		first, second := post(try)
		if run, calls, ok := s.waitBatchRun(t, first, second); ok {
			return run, calls
		}
		t.Logf("try %d: events %s and %s ran in separate runs (the batch window closed between them); posting a new pair", try, first, second)
	}
	t.Fatalf("%d pairs of events each ran in two runs; want a pair in one batch run", tries)
	return batchRun{}, nil
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
		var eventID, userID string
		run, calls := s.batchOf(t, func(try int) (string, string) {
			msgID := fmt.Sprintf("msg_batch_dup_%d_%d", stamp, try)
			eventID, userID = event.ID(msgID), fmt.Sprintf("user_batch_dup_%d", try)
			body := clerkUserEvent("user.created", userID, "Dup", "batchdup@example.org", 1700000000001)
			s.mustPost(t, body, msgID, http.StatusOK)
			s.mustPost(t, body, msgID, http.StatusOK) // Svix retrying the delivery
			return eventID, eventID
		})
		if len(calls) == 0 || len(calls[0].EventIDs) != 2 {
			t.Fatalf("calls of run %s = %+v; want the batch to hold both events", run.RunID, calls)
		}
		// One write: one result for the delivery, the other event listed as its duplicate.
		w := run.Output.Written
		if run.Status != "Completed" || len(w) != 1 || w[0].UserID != userID || w[0].Outcome != string(store.Inserted) ||
			len(run.Output.Duplicates) != 1 || run.Output.Duplicates[0] != eventID {
			t.Errorf("batch run = %+v; want Completed, written once (%s inserted), duplicates [%s]", run, userID, eventID)
		}
		s.waitUser(t, userID, time.Second, func(u store.User, err error) bool { return err == nil && u.FullName == "Dup Tester" })
	})

	t.Run("MalformedEventInABatch", func(t *testing.T) {
		var good, bad string
		run, calls := s.batchOf(t, func(try int) (string, string) {
			good, bad = fmt.Sprintf("msg_batch_good_%d_%d", stamp, try), fmt.Sprintf("msg_batch_bad_%d_%d", stamp, try)
			s.mustPost(t, clerkUserEvent("user.created", "user_batch_good", "Good", "batchgood@example.org", 1700000000001), good, http.StatusOK)
			s.mustPost(t, []byte(`{"object":"event","type":"user.created","timestamp":1700000000001,"data":`+
				`{"object":"user","id":"user_batch_bad","email_addresses":{"id":"idn_1","email_address":"b@example.org"},"updated_at":1700000000001}}`), bad, http.StatusOK)
			return event.ID(good), event.ID(bad)
		})
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
