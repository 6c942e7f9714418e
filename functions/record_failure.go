package functions

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/inngest/inngestgo"
	"github.com/inngest/inngestgo/step"

	"clerksync/store"
)

// RecordFailureID is the id of the function that records the sync functions' permanent
// failures.
const RecordFailureID = "record-sync-failure"

// FunctionFailed is the event Inngest sends when a run fails for good: after its last retry,
// or at once for a NoRetryError.
const FunctionFailed = "inngest/function.failed"

// FailureStore is where failed runs are recorded. *store.Store implements it.
type FailureStore interface {
	// RecordFailure stores f once per run id, reporting false when the run was already stored.
	RecordFailure(ctx context.Context, f store.Failure) (bool, error)
}

// FunctionFailedData is the data of an inngest/function.failed event.
type FunctionFailedData struct {
	// FunctionID is the failed function's full id, <app id>-<function id>.
	FunctionID string `json:"function_id"`
	// RunID is the failed run's id.
	RunID string `json:"run_id"`
	// Error is the error the run ended with.
	Error struct {
		Name    string `json:"name"`
		Message string `json:"message"`
	} `json:"error"`
	// Event is the event that started the run (the first one, for a batch).
	Event struct {
		ID   string          `json:"id"`
		Name string          `json:"name"`
		Data json.RawMessage `json:"data"`
	} `json:"event"`
}

// FailureRecorder is the record-sync-failure function: it stores every permanent failure of
// sync-user-from-clerk, update-user-from-clerk and delete-user-with-clerk, so that failed
// events can be found and replayed.
type FailureRecorder struct {
	failures FailureStore
	logger   *slog.Logger
	metrics  Metrics
}

// NewFailureRecorder returns the recorder, writing to failures, logging to logger and counting
// in cfg.Metrics (the rest of cfg is unused).
func NewFailureRecorder(failures FailureStore, logger *slog.Logger, cfg Config) *FailureRecorder {
	m := cfg.Metrics
	if m == nil {
		m = nopMetrics{}
	}
	return &FailureRecorder{failures: failures, logger: logger, metrics: m}
}

// FailureExpression returns the trigger expression that keeps, of all inngest/function.failed
// events, those of the three sync functions of the app appID.
func FailureExpression(appID string) string {
	var conds []string
	for _, fn := range []string{SyncUserID, UpdateUserID, DeleteUserID} {
		conds = append(conds, fmt.Sprintf("event.data.function_id == %q", appID+"-"+fn))
	}
	return strings.Join(conds, " || ")
}

// Register creates record-sync-failure on client, triggered by the failures of the sync
// functions of client's app. It returns an error if the SDK rejects the configuration.
func (r *FailureRecorder) Register(client inngestgo.Client) error {
	expr := FailureExpression(client.AppID())
	_, err := inngestgo.CreateFunction(client,
		inngestgo.FunctionOpts{ID: RecordFailureID, Name: "Record sync failure", Retries: inngestgo.IntPtr(maxRetries)},
		inngestgo.EventTrigger(FunctionFailed, &expr),
		r.RecordFailure,
	)
	return err
}

// RecordFailure is record-sync-failure, run for each inngest/function.failed event of a sync
// function. It stores the failure keyed by the failed run's id (so a retry or a duplicate
// event stores nothing new) and logs it once, at error level. It returns a NoRetryError for an
// event without a run id, and the store's error (which Inngest retries) when the database
// fails.
func (r *FailureRecorder) RecordFailure(ctx context.Context, in inngestgo.Input[FunctionFailedData]) (any, error) {
	d := in.Event.Data
	f := store.Failure{
		RunID:      d.RunID,
		FunctionID: d.FunctionID,
		EventID:    d.Event.ID,
		EventName:  d.Event.Name,
		UserID:     userIDOf(d.Event.Data),
		Error:      d.Error.Message,
		FailedAt:   time.Now().UTC(),
	}
	if f.Error == "" {
		f.Error = d.Error.Name
	}
	if in.Event.Timestamp > 0 {
		f.FailedAt = time.UnixMilli(in.Event.Timestamp).UTC()
	}
	log := r.logger.With(
		"function", RecordFailureID,
		"failed_function", f.FunctionID,
		"failed_run_id", f.RunID,
		"event_id", f.EventID,
		"svix_id", strings.TrimPrefix(f.EventID, "clerk-"),
		"user_id", f.UserID,
		"run_id", in.InputCtx.RunID,
	)
	if f.RunID == "" {
		err := fmt.Errorf("%s event without data.run_id", FunctionFailed)
		log.Error("failure cannot be recorded; not retrying", "error", err)
		r.metrics.FunctionRun(RecordFailureID, OutcomeInvalid)
		return nil, inngestgo.NoRetryError(err)
	}
	recorded, err := step.Run(ctx, "record-failure", func(ctx context.Context) (bool, error) {
		stored, err := r.failures.RecordFailure(ctx, f)
		if err != nil {
			log.Error("recording a failed run failed; Inngest will retry", "error", err)
			r.metrics.FunctionRun(RecordFailureID, OutcomeError)
			return false, err
		}
		if !stored {
			log.Debug("failed run already recorded")
			r.metrics.FunctionRun(RecordFailureID, OutcomeAlreadyRecorded)
			return false, nil
		}
		log.Error("sync run failed for good; recorded in "+store.FailuresCollection+"; replay it from the Inngest dashboard once fixed", "error", f.Error)
		r.metrics.FunctionRun(RecordFailureID, OutcomeRecorded)
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	return FailureResult{RunID: f.RunID, Recorded: recorded}, nil
}

// FailureResult is what record-sync-failure returns; the Inngest dashboard shows it.
type FailureResult struct {
	// RunID is the failed run's id.
	RunID string `json:"run_id"`
	// Recorded is false when the run had been recorded before.
	Recorded bool `json:"recorded"`
}

// userIDOf returns data.id of a Clerk event's data, or "" when it has none or it is not a
// string.
func userIDOf(data json.RawMessage) string {
	var d struct {
		ID any `json:"id"`
	}
	if json.Unmarshal(data, &d) != nil {
		return ""
	}
	id, _ := d.ID.(string)
	return id
}
