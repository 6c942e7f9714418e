package reconcile

import "time"

// SetStepBudget gives each step of r the deadline d instead of StepBudget, so that tests of the
// budget need not wait a minute.
func SetStepBudget(r *Reconciler, d time.Duration) { r.budget = d }

// SetMaxOrgSteps bounds the steps of r's organizations runs before their deletions to n
// instead of maxOrgRunSteps, so that tests of the bound need not list hundreds of pages.
func SetMaxOrgSteps(r *Reconciler, n int) { r.maxOrgSteps = n }
