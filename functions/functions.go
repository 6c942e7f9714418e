// Package functions holds the Inngest functions that write Clerk users to the store:
// sync-user-from-clerk (clerk/user.created), update-user-from-clerk (clerk/user.updated) and
// delete-user-with-clerk (clerk/user.deleted). Each does its database work inside step.Run,
// so Inngest retries it when the database fails, and relies on the store's conditional writes
// (not on delivery order) for correctness.
package functions

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/inngest/inngest/pkg/enums"
	"github.com/inngest/inngestgo"

	"clerksync/clerk"
	"clerksync/store"
)

// Function IDs, as the Inngest dashboard shows them (prefixed with the app ID).
const (
	SyncUserID   = "sync-user-from-clerk"
	UpdateUserID = "update-user-from-clerk"
	DeleteUserID = "delete-user-with-clerk"
)

// maxRetries is how often Inngest retries a failed step (with its backoff) before the run
// fails for good: enough to ride out a database outage of hours.
const maxRetries = 10

// UserConcurrencyKey is the key of the Inngest concurrency limit that serialises every run
// writing one user: the same expression in the environment's scope in the three functions,
// so that one user's create, update and delete runs never overlap, on any replica. The store's
// guarded writes stay the correctness guarantee; the key removes the races that make them
// retry, and makes several replicas safe on a database whose conditional updates are not
// atomic (FerretDB).
const UserConcurrencyKey = `"clerk-user:" + event.data.id`

// userConcurrency is the limit of one run at a time per UserConcurrencyKey.
func userConcurrency() []inngestgo.ConfigStepConcurrency {
	key := UserConcurrencyKey
	return []inngestgo.ConfigStepConcurrency{{Limit: 1, Key: &key, Scope: enums.ConcurrencyScopeEnv}}
}

// UserStore is the storage the functions write to. *store.Store implements it.
type UserStore interface {
	// UpsertUser writes u unless the stored user is as new or newer, or deleted.
	UpsertUser(ctx context.Context, u store.User) (store.Outcome, error)
	// DeleteUser turns the user into a tombstone that no later upsert brings back.
	DeleteUser(ctx context.Context, id string, deletedAt int64) (store.Outcome, error)
}

// Config tunes the functions.
type Config struct {
	// AppID is the Inngest app's id (the client's AppID): the failures a batch run records
	// itself name their function <AppID>-<function id>, as record-sync-failure's do.
	AppID string
	// BatchSize, when above 1, lets Inngest hand sync-user-from-clerk and
	// update-user-from-clerk up to BatchSize events per run (waiting at most BatchWait for a
	// batch to fill). Each event is still written through its own guarded upsert, so every
	// guarantee holds; batching only saves Inngest runs under bursts. A batch run records its
	// events that fail for good in the failure store itself, each under its own event id (see
	// upsertBatch). 0 or 1: one run per event.
	BatchSize int
	// BatchWait bounds how long a lone event waits for a batch (default 1s).
	BatchWait time.Duration
	// Metrics counts each run's outcome; nil counts nothing.
	Metrics Metrics
	// WithoutUserOrdering leaves out the per-user concurrency limit (UserConcurrencyKey): only
	// for the test that shows what the limit prevents.
	WithoutUserOrdering bool
}

// Functions holds the dependencies of the three functions.
type Functions struct {
	users    UserStore
	failures FailureStore
	logger   *slog.Logger
	cfg      Config
}

// New returns the functions, writing users to users, recording the events of a batch that fail
// for good in failures, and logging to logger.
func New(users UserStore, failures FailureStore, logger *slog.Logger, cfg Config) *Functions {
	if cfg.BatchWait <= 0 {
		cfg.BatchWait = time.Second
	}
	if cfg.Metrics == nil {
		cfg.Metrics = nopMetrics{}
	}
	return &Functions{users: users, failures: failures, logger: logger, cfg: cfg}
}

// Register creates the three functions on client, so that client's serve handler offers them
// to Inngest. It returns an error if Config.AppID is not client's app id, or if the SDK
// rejects a function's configuration.
func (f *Functions) Register(client inngestgo.Client) error {
	if f.cfg.AppID != client.AppID() {
		return fmt.Errorf("functions: Config.AppID %q is not the client's app id %q", f.cfg.AppID, client.AppID())
	}
	// One run at a time per user, across the three functions and every replica. A batch
	// holds several users, so batched runs go without the key: the store's guarded writes
	// serialise them (per process on FerretDB).
	perUser := userConcurrency()
	if f.cfg.WithoutUserOrdering {
		perUser = nil
	}
	var batch *inngestgo.ConfigBatchEvents
	upsertLimit := perUser
	if f.cfg.BatchSize > 1 {
		batch = &inngestgo.ConfigBatchEvents{MaxSize: f.cfg.BatchSize, Timeout: f.cfg.BatchWait}
		upsertLimit = nil
	}
	if _, err := inngestgo.CreateFunction(client,
		inngestgo.FunctionOpts{ID: SyncUserID, Name: "Sync user from Clerk", Retries: inngestgo.IntPtr(maxRetries), BatchEvents: batch, Concurrency: upsertLimit},
		inngestgo.EventTrigger(clerk.UserCreated, nil),
		f.SyncUser,
	); err != nil {
		return err
	}
	if _, err := inngestgo.CreateFunction(client,
		inngestgo.FunctionOpts{ID: UpdateUserID, Name: "Update user from Clerk", Retries: inngestgo.IntPtr(maxRetries), BatchEvents: batch, Concurrency: upsertLimit},
		inngestgo.EventTrigger(clerk.UserUpdated, nil),
		f.UpdateUser,
	); err != nil {
		return err
	}
	_, err := inngestgo.CreateFunction(client,
		inngestgo.FunctionOpts{ID: DeleteUserID, Name: "Delete user with Clerk", Retries: inngestgo.IntPtr(maxRetries), Concurrency: perUser},
		inngestgo.EventTrigger(clerk.UserDeleted, nil),
		f.DeleteUser,
	)
	return err
}

// Result is what a function run returns; the Inngest dashboard shows it as the run's output.
type Result struct {
	UserID  string        `json:"user_id"`
	Outcome store.Outcome `json:"outcome"`
}

// runLogger returns the logger for one run, carrying the ids that tie a log line to the
// webhook delivery, the Inngest event and the user.
func (f *Functions) runLogger(function string, eventID *string, userID string, ctx inngestgo.InputCtx) *slog.Logger {
	id := ""
	if eventID != nil {
		id = *eventID
	}
	return f.logger.With(
		"function", function,
		"event_id", id,
		"svix_id", clerk.SvixID(id),
		"user_id", userID,
		"run_id", ctx.RunID,
		"attempt", ctx.Attempt,
	)
}
