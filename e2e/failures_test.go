package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"clerksync/clerk"
	"clerksync/clerk/event"
	"clerksync/functions"
	"clerksync/store"
)

// testPermanentFailureRecorded: an event sync-user-from-clerk can never apply (no user id)
// fails its run for good; the dev server then sends inngest/function.failed, and
// record-sync-failure stores exactly one failure for it.
func (s *stack) testPermanentFailureRecorded(t *testing.T) {
	since := time.Now().Add(-2 * time.Second)
	const msgID = "msg_fail_noid"
	eventID := event.ID(msgID)
	s.mustPost(t, []byte(`{"type":"user.created","data":{"first_name":"X"}}`), msgID, http.StatusOK)

	runs := s.waitRunsSettled(t, eventID)
	if len(runs) != 1 || runs[0].Status != "Failed" {
		t.Fatalf("runs of sync-user-from-clerk for %s = %+v; want one, Failed", eventID, runs)
	}
	failedRun := runs[0].RunID

	want := store.Failure{
		RunID:      failedRun,
		FunctionID: "clerk-user-sync-" + functions.SyncUserID,
		EventID:    eventID,
		EventName:  event.UserCreated,
	}
	f := s.waitOneFailure(t, eventID)
	if f.RunID != want.RunID || f.FunctionID != want.FunctionID || f.EventID != want.EventID || f.EventName != want.EventName || f.UserID != "" {
		t.Errorf("recorded failure = %+v; want run %s, function %s, event %s (%s), no user id", f, want.RunID, want.FunctionID, want.EventID, want.EventName)
	}
	if !strings.Contains(f.Error, clerk.ErrBadUser.Error()) || f.FailedAt.Before(since) || f.FailedAt.After(time.Now().Add(time.Minute)) {
		t.Errorf("recorded failure = %+v; want the run's error (%q) and a failure time after %v", f, clerk.ErrBadUser, since)
	}
}
