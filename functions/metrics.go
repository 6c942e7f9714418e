package functions

// Metrics counts what the functions do. The service implements it with Prometheus counters;
// Config.Metrics left nil counts nothing.
type Metrics interface {
	// FunctionRun counts one attempt of function (a function id such as sync-user-from-clerk)
	// ending with outcome: a store.Outcome for a write, or one of the Outcome constants below.
	FunctionRun(function, outcome string)
}

// Outcomes counted besides the store's (inserted, updated, skipped, deleted, already_deleted).
const (
	// OutcomeError: the database failed; Inngest retries the step.
	OutcomeError = "error"
	// OutcomeInvalid: the event cannot be applied (data that cannot be read, no user id, no
	// timestamp); not retried.
	OutcomeInvalid = "invalid"
	// OutcomeRecorded: record-sync-failure stored a failed run.
	OutcomeRecorded = "recorded"
	// OutcomeAlreadyRecorded: record-sync-failure found the failed run already stored.
	OutcomeAlreadyRecorded = "already_recorded"
)

// nopMetrics counts nothing.
type nopMetrics struct{}

func (nopMetrics) FunctionRun(string, string) {}
