package reconcile

import "time"

// SetStepBudget gives each step of r the deadline d instead of StepBudget, so that tests of the
// budget need not wait a minute.
func SetStepBudget(r *Reconciler, d time.Duration) { r.budget = d }

// SetMaxRunSteps bounds the steps of one run of r's users' or organizations' pass to n instead of 800, so that
// tests of the hand-over to the next run need not read hundreds of pages.
func SetMaxRunSteps(r *Reconciler, n int) { r.maxRunSteps = n }

// SetFindChunk sets how many live users a find-deletions step compares, so that tests of those
// steps need not write tens of thousands of users.
func SetFindChunk(r *Reconciler, n int) { r.findChunk = n }

// SetSender makes r send ContinueEvent through s instead of the client Register gets, so that
// tests can drive the next run without an Inngest server.
func SetSender(r *Reconciler, s EventSender) { r.sender = s }

// SetMemberPages makes each org-members step of r read at most n pages of members (besides
// stopping at half its budget), so that tests of an organization whose members span steps
// need neither slow pages nor a tight budget.
func SetMemberPages(r *Reconciler, n int) { r.memberPages = n }
