package functions_test

import (
	"fmt"
	"testing"

	"github.com/inngest/inngestgo"
	inngesterrors "github.com/inngest/inngestgo/errors"

	"clerksync/functions"
	"clerksync/store"
)

// batchInput builds the input of a batched run: Event is the first event, Events all of them.
func batchInput(users ...functions.ClerkUser) inngestgo.Input[functions.ClerkUser] {
	var in inngestgo.Input[functions.ClerkUser]
	for i, u := range users {
		id := fmt.Sprintf("clerk-msg_batch_%d_%s", i, u.ID)
		in.Events = append(in.Events, inngestgo.GenericEvent[functions.ClerkUser]{ID: &id, Name: functions.UserCreated, Data: u, Timestamp: u.UpdatedAt})
	}
	in.Event = in.Events[0]
	return in
}

func TestBatchKeepsTheGuarantees(t *testing.T) {
	h := newHarness(t)
	h.mustSend(deleted("user_b_gone", t1), store.Deleted)
	h.mustSend(updated(clerkUser("user_b_newer", "Newer", "One", "newer@x.org", "", t3)), store.Inserted)

	in := batchInput(
		clerkUser("user_b_1", "Jane", "One", "jane@a.org", "", t1),
		clerkUser("user_b_2", "Jane", "Two", "jane@b.org", "", t1),  // same local part: another username
		clerkUser("user_b_1", "Jane", "One", "jane@a.org", "", t1),  // a duplicate in the batch
		clerkUser("user_b_1", "Janet", "One", "jane@a.org", "", t2), // and a newer update of it
		clerkUser("user_b_gone", "Zombie", "X", "z@x.org", "", t3),  // deleted before: stays deleted
		clerkUser("user_b_newer", "Older", "X", "o@x.org", "", t1),  // older than the stored one
		clerkUser("", "No", "Id", "", "", t1),                       // unusable: left out
	)
	res, err := h.fns.SyncUser(h.ctx, in)
	if err != nil {
		t.Fatalf("SyncUser(batch of 7) = %v; want the batch written", err)
	}
	if got, ok := res.([]functions.Result); !ok || len(got) != 6 {
		t.Fatalf("SyncUser(batch of 7) result = %#v; want 6 results (the event without an id left out)", res)
	}
	if u := h.get("user_b_1"); u.FullName != "Janet One" || u.UpdatedAt != t2 {
		t.Errorf("user_b_1 = %s; want the newest of its three events (Janet One, t2)", show(u))
	}
	if a, b := h.get("user_b_1"), h.get("user_b_2"); a.Username == b.Username {
		t.Errorf("user_b_1 and user_b_2 share username %q", a.Username)
	}
	checkTombstone(t, h.get("user_b_gone"), t1)
	if u := h.get("user_b_newer"); u.FullName != "Newer One" {
		t.Errorf("user_b_newer = %s; want the newer stored data kept", show(u))
	}

	// A replay of the whole batch (Inngest retrying it) changes nothing.
	before := h.get("user_b_1")
	if _, err := h.fns.SyncUser(h.ctx, in); err != nil {
		t.Fatalf("replayed batch: %v", err)
	}
	if after := h.get("user_b_1"); show(after) != show(before) {
		t.Errorf("replayed batch changed user_b_1: %s -> %s", show(before), show(after))
	}
}

func TestBatchOfUnusableEventsIsNotRetried(t *testing.T) {
	h := newHarness(t)
	_, err := h.fns.UpdateUser(h.ctx, batchInput(clerkUser("", "A", "B", "", "", t1), clerkUser(" ", "C", "D", "", "", t1)))
	if err == nil || !inngesterrors.IsNoRetryError(err) {
		t.Fatalf("UpdateUser(batch without ids) = %v; want a NoRetryError", err)
	}
}
