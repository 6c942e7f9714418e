package reconcile

import "time"

// SetStepBudget gives each step of r the deadline d instead of StepBudget, so that tests of the
// budget need not wait a minute.
func SetStepBudget(r *Reconciler, d time.Duration) { r.budget = d }
