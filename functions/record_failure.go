package functions

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/inngest/inngestgo"
	"github.com/inngest/inngestgo/step"

	clerkevent "clerksync/clerk/event"
	"clerksync/store"
)

// RecordFailureID is the id of the function that records the sync functions' permanent
// failures: those of the user, organization and membership functions.
const RecordFailureID = "record-sync-failure"

// FunctionFailed is the event Inngest sends when a run fails for good: after its last retry,
// or at once for a NoRetryError.
const FunctionFailed = "inngest/function.failed"

// FailureStore is where the events of failed runs are recorded. *store.Store implements it.
type FailureStore interface {
	// RecordFailure stores f once per run id and event id, reporting false when that event of
	// that run was already stored.
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
	// Event is the event that started the run; for a batch only the first one (a batch run
	// records its failed events itself, see upsertBatch).
	Event struct {
		ID   string          `json:"id"`
		Name string          `json:"name"`
		Data json.RawMessage `json:"data"`
	} `json:"event"`
}

// FailureRecorder is the record-sync-failure function: it stores every permanent failure of
// the user functions (sync-user-from-clerk, update-user-from-clerk, delete-user-with-clerk),
// the organization functions (sync-organization-from-clerk, ...) and the membership functions
// (sync-membership-from-clerk, ...), so that failed events can be found and replayed.
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
// events, those of the nine sync functions (user, organization, membership) of the app appID.
func FailureExpression(appID string) string {
	var conds []string
	for _, fn := range syncFunctions {
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
// function. It stores the failure of the run's event, keyed by the failed run's id and the
// event's id (so a retry or a duplicate event stores nothing new), and logs it once, at error
// level. When the run is a batch whose error lists the events it could neither write nor
// record (unrecordedMarker), it stores each of those under its own event id and user id
// instead of the run's first event. It returns a NoRetryError for an event without a run id,
// and the store's error (which Inngest retries) when the database fails.
func (r *FailureRecorder) RecordFailure(ctx context.Context, in inngestgo.Input[FunctionFailedData]) (any, error) {
	d := in.Event.Data
	failedAt := time.Now().UTC()
	if in.Event.Timestamp > 0 {
		failedAt = time.UnixMilli(in.Event.Timestamp).UTC()
	}
	msg := d.Error.Message
	if msg == "" {
		msg = d.Error.Name
	}
	first := store.Failure{
		RunID:      d.RunID,
		FunctionID: d.FunctionID,
		EventID:    d.Event.ID,
		EventName:  d.Event.Name,
		UserID:     userIDOf(d.Event.Name, d.Event.Data),
		Error:      msg,
		FailedAt:   failedAt,
	}
	// A batch run lists the events it could neither write nor record; Inngest's event only
	// carries its first one.
	failures := []store.Failure{first}
	events, cause, listed := unrecordedEvents(msg)
	if listed {
		failures = make([]store.Failure, 0, len(events))
		for _, e := range events {
			f := first
			f.EventID, f.EventName, f.UserID, f.Error = e.EventID, cmp.Or(e.EventName, first.EventName), e.UserID, cmp.Or(e.Error, cause)
			failures = append(failures, f)
		}
	}
	unreadable := !listed && strings.Contains(msg, unrecordedMarker)
	if d.RunID == "" {
		err := fmt.Errorf("%s event without data.run_id", FunctionFailed)
		r.logger.With(r.failureAttrs(first, in.InputCtx)...).Error("failure cannot be recorded; not retrying", "error", err)
		r.metrics.FunctionRun(RecordFailureID, OutcomeInvalid)
		return nil, inngestgo.NoRetryError(err)
	}
	recorded, err := step.Run(ctx, "record-failure", func(ctx context.Context) (bool, error) {
		if unreadable {
			r.logger.With(r.failureAttrs(first, in.InputCtx)...).Warn("the events a failed batch lists in its error cannot be read; recording the failure under its first event")
		}
		storedAny := false
		for _, f := range failures {
			log := r.logger.With(r.failureAttrs(f, in.InputCtx)...)
			stored, err := r.failures.RecordFailure(ctx, f)
			if err != nil {
				log.Error("recording a failed run failed; Inngest will retry", "error", err)
				r.metrics.FunctionRun(RecordFailureID, OutcomeError)
				return false, err
			}
			if !stored {
				log.Debug("failed run already recorded")
				r.metrics.FunctionRun(RecordFailureID, OutcomeAlreadyRecorded)
				continue
			}
			log.Error("sync run failed for good; recorded in "+store.FailuresCollection+"; replay it from the Inngest dashboard once fixed", "error", f.Error)
			r.metrics.FunctionRun(RecordFailureID, OutcomeRecorded)
			storedAny = true
		}
		return storedAny, nil
	})
	if err != nil {
		return nil, err
	}
	res := FailureResult{RunID: d.RunID, Recorded: recorded}
	for _, f := range failures {
		res.EventIDs = append(res.EventIDs, f.EventID)
	}
	return res, nil
}

// failureAttrs returns the log attributes of the failure f, recorded by the run ic.
func (r *FailureRecorder) failureAttrs(f store.Failure, ic inngestgo.InputCtx) []any {
	return []any{
		"function", RecordFailureID,
		"failed_function", f.FunctionID,
		"failed_run_id", f.RunID,
		"event_id", f.EventID,
		"svix_id", clerkevent.SvixID(f.EventID),
		"user_id", f.UserID,
		"run_id", ic.RunID,
	}
}

// unrecordedEvents returns the events listed after unrecordedMarker at the end of msg, the
// error of a batch run (see writeBatch), and the part of msg before the list. ok is false
// when msg lists no events, or the list cannot be read (cut short, for example).
func unrecordedEvents(msg string) (events []FailedEvent, cause string, ok bool) {
	i := strings.LastIndex(msg, unrecordedMarker)
	if i < 0 {
		return nil, "", false
	}
	// A decoder reads the list and ignores whatever Inngest may have added after it.
	dec := json.NewDecoder(strings.NewReader(msg[i+len(unrecordedMarker):]))
	if err := dec.Decode(&events); err != nil || len(events) == 0 {
		return nil, "", false
	}
	return events, strings.TrimSpace(msg[:i]), true
}

// FailureResult is what record-sync-failure returns; the Inngest dashboard shows it.
type FailureResult struct {
	// RunID is the failed run's id.
	RunID string `json:"run_id"`
	// Recorded is false when every failure had been recorded before.
	Recorded bool `json:"recorded"`
	// EventIDs are the ids of the events whose failure the run covered: the run's event, or
	// the events a failed batch listed.
	EventIDs []string `json:"event_ids"`
}

// userIDOf returns the id of the user a Clerk event named name is about, read from its data, or
// "" when it has none or it is not a string: data.public_user_data.user_id for a membership
// event, none for an organization event (data.id is the organization's), and data.id for the
// user events (and any other).
func userIDOf(name string, data json.RawMessage) string {
	var d struct {
		ID             any `json:"id"`
		PublicUserData struct {
			UserID any `json:"user_id"`
		} `json:"public_user_data"`
	}
	var id any
	switch {
	case strings.HasPrefix(name, clerkevent.NamePrefix+"organizationMembership."):
		if json.Unmarshal(data, &d) == nil {
			id = d.PublicUserData.UserID
		}
	case strings.HasPrefix(name, clerkevent.NamePrefix+"organization."):
	default:
		if json.Unmarshal(data, &d) == nil {
			id = d.ID
		}
	}
	s, _ := id.(string)
	return s
}
