package reconcile

import "time"

// SetStepBudget gives each step of r the deadline d instead of StepBudget, so that tests of the
// budget need not wait a minute.
func SetStepBudget(r *Reconciler, d time.Duration) { r.budget = d }

// SetMaxRunSteps bounds the steps of one run of r's users' or organizations' pass to n instead of 800, so that
// tests of the hand-over to the next run need not read hundreds of pages.
func SetMaxRunSteps(r *Reconciler, n int) { r.maxRunSteps = n }

// SetScan makes r's scan steps read batch live users at a time, and at most batches batches
// each (0: as many as half the step's budget allows), so that tests of a scan over several
// steps need not write tens of thousands of users.
func SetScan(r *Reconciler, batch, batches int) { r.scanBatch, r.scanBatches = batch, batches }

// SetSender makes r send ContinueEvent through s instead of the client Register gets, so that
// tests can drive the next run without an Inngest server.
func SetSender(r *Reconciler, s EventSender) { r.sender = s }

// SetMemberPages makes each org-members step of r read at most n pages of members (besides
// stopping at half its budget), so that tests of an organization whose members span steps
// need neither slow pages nor a tight budget.
func SetMemberPages(r *Reconciler, n int) { r.memberPages = n }

// SetFindChunk makes r's org-find-deletions and org-member-find steps compare n ids each
// instead of 20,000, so that tests of those phases over several steps need few ids.
func SetFindChunk(r *Reconciler, n int) { r.findChunk = n }
