package reconcile

import (
	"context"
	"errors"

	"github.com/inngest/inngest/pkg/enums"
	"github.com/inngest/inngestgo"
)

// FunctionID is the users' cron function's id, as the Inngest dashboard shows it (prefixed
// with the app id).
const FunctionID = "reconcile-users-with-clerk"

// OrganizationsFunctionID is the id of the cron function that reconciles the organizations and
// their memberships.
const OrganizationsFunctionID = "reconcile-organizations-with-clerk"

// DefaultSchedule runs the reconciliation daily at 03:00 UTC: the users' full pass
// (RECONCILE_SCHEDULE's default; Config.FullSchedule when the incremental runs are on).
const DefaultSchedule = "0 3 * * *"

// RequestEvent is the event that starts a run of both functions now, besides their cron
// schedule (the `clerk-user-sync reconcile` command sends it). Its data may carry
// AllowMassDeleteField: true lifts the safety checks for the runs this one event starts, and
// for no other run.
const RequestEvent = "clerk-sync/reconcile.requested"

// AllowMassDeleteField is the field of RequestEvent's data that, true (a JSON boolean), lets
// the runs the event starts through the deletion cap (Config.MaxDeleteShare) and the overlap
// check (Config.MinSharedShare), never through the instance check. Anything else, or a cron
// run, keeps them.
const AllowMassDeleteField = "allow_mass_delete"

// IncrementalField is the field of RequestEvent's data that, true (a JSON boolean), asks
// reconcile-users-with-clerk for an incremental run (the users changed since the watermark,
// as a run of the incremental schedule: incremental.go) instead of a full pass, and
// reconcile-organizations-with-clerk, which has no incremental run, for nothing: its run ends
// at once (OrganizationsSummary.SkippedIncremental). The `clerk-user-sync reconcile
// --incremental` command sends it.
const IncrementalField = "incremental"

// maxRetries is how often Inngest retries a failed step (a page, the plan, a deletion chunk)
// before the run fails; the next scheduled run starts over anyway. Both functions have it.
const maxRetries = 5

// Register creates reconcile-users-with-clerk on client, run on the cron schedule (for example
// DefaultSchedule), on the cron Config.FullSchedule when set, on RequestEvent, and on
// ContinueEvent (a pass that needs more than one run), so that client's serve handler offers
// it to Inngest. With FullSchedule set, a run of schedule is incremental (it reads only the
// users changed since the watermark: incremental.go) and every other run is a full pass;
// without it, every run is a full pass. It sends ContinueEvent through
// client unless r has a sender already. One pass at a time: a run scheduled or requested while
// another is still going is skipped (the function's singleton, which leaves ContinueEvent out,
// so that a pass's next run is never skipped), and one that starts while a pass spanning
// several runs is going does nothing (the pass's lease in the database; Summary.SkippedBusy).
// Each run has the safety checks of r's Config except AllowMassDelete, which only a
// RequestEvent asking for it turns on, for the pass it starts (forRun). It returns an error if
// the SDK rejects the function's configuration.
func (r *Reconciler) Register(client inngestgo.Client, schedule string) error {
	if r.sender == nil {
		r.sender = client
	}
	trig := triggers(schedule)
	if r.cfg.FullSchedule != "" && r.cfg.FullSchedule != schedule {
		trig = append(trig, inngestgo.CronTrigger(r.cfg.FullSchedule))
	}
	_, err := inngestgo.CreateFunction(client,
		inngestgo.FunctionOpts{
			ID:      FunctionID,
			Name:    "Reconcile users with Clerk",
			Retries: inngestgo.IntPtr(maxRetries),
			Singleton: &inngestgo.ConfigSingleton{
				Mode: enums.SingletonModeSkip,
				// false for ContinueEvent: no singleton (Inngest's "not a singleton").
				Key: inngestgo.StrPtr(`event.name != "` + ContinueEvent + `"`),
			},
		},
		append(trig, inngestgo.EventTrigger(ContinueEvent, nil)),
		r.reconcileRun,
	)
	return err
}

// reconcileRun is the function's body: one run of a users' pass (runPass), a new one or the
// one ContinueEvent carries (runOf). When the pass is done, its summary is the run's output;
// when the run's steps are spent first, the step continue-pass sends ContinueEvent with the
// pass's state, and the output is the summary so far (Continued: handOver). When Clerk
// answers 429, the step that got it returns an inngestgo.RetryAtError itself (see runStep):
// Inngest reports a failed step's own error and ignores what the function returns after it, so
// wrapping the error here would not reach Inngest.
func (r *Reconciler) reconcileRun(ctx context.Context, in inngestgo.Input[map[string]any]) (any, error) {
	st := &passState{}
	r, err := r.runOf(in, st)
	if err != nil {
		return nil, err
	}
	if r.incrementalEvent(in.Event) {
		// An incremental run (incremental.go), unless it has to be a full pass now.
		sum, next, err := r.incremental(ctx, st.Pass)
		if next == nil {
			r.cfg.Metrics.Reconciled(sum, err)
			return sum, err
		}
		st = next
	}
	err = r.runPass(ctx, st)
	if errors.Is(err, errHandOver) {
		return r.handOver(ctx, st)
	}
	// Past runPass, the pass is over (an unfinished run leaves it through the SDK's step
	// control, or hands over above).
	r.cfg.Metrics.Reconciled(st.Summary, err)
	return st.Summary, err
}

// RegisterOrganizations creates reconcile-organizations-with-clerk on client, run on the cron
// schedule (the users' one, for example), on RequestEvent, and on OrganizationsContinueEvent (a
// pass that needs more than one run), as Register does for the users: one pass at a time (the
// singleton, which leaves OrganizationsContinueEvent out, and the pass's lease), and
// AllowMassDelete only for a pass a RequestEvent asking for it starts. It sends
// OrganizationsContinueEvent through client unless r has a sender already. It returns an error
// if the SDK rejects the function's configuration.
func (r *Reconciler) RegisterOrganizations(client inngestgo.Client, schedule string) error {
	if r.sender == nil {
		r.sender = client
	}
	_, err := inngestgo.CreateFunction(client,
		inngestgo.FunctionOpts{
			ID:      OrganizationsFunctionID,
			Name:    "Reconcile organizations and memberships with Clerk",
			Retries: inngestgo.IntPtr(maxRetries),
			Singleton: &inngestgo.ConfigSingleton{
				Mode: enums.SingletonModeSkip,
				// false for OrganizationsContinueEvent: no singleton.
				Key: inngestgo.StrPtr(`event.name != "` + OrganizationsContinueEvent + `"`),
			},
		},
		append(triggers(schedule), inngestgo.EventTrigger(OrganizationsContinueEvent, nil)),
		r.reconcileOrganizationsRun,
	)
	return err
}

// triggers are what starts a run of either function: the cron schedule, and RequestEvent.
func triggers(schedule string) inngestgo.MultipleTriggers {
	return inngestgo.MultipleTriggers{
		inngestgo.CronTrigger(schedule),
		inngestgo.EventTrigger(RequestEvent, nil),
	}
}

// forRun returns the reconciler of the run that evt started: r with AllowMassDelete on only
// when evt is RequestEvent with AllowMassDeleteField true, and off otherwise (a cron run, a
// request without it, an invocation from the dashboard), whatever r's Config says. Inngest
// calls the function once per step with the same event, so every step of the run sees the
// same answer.
func (r *Reconciler) forRun(evt inngestgo.GenericEvent[map[string]any]) *Reconciler {
	run := *r
	allow, _ := evt.Data[AllowMassDeleteField].(bool)
	run.cfg.AllowMassDelete = evt.Name == RequestEvent && allow
	if evt.Name == RequestEvent {
		run.logger = r.logger.With("event", RequestEvent, AllowMassDeleteField, run.cfg.AllowMassDelete)
	}
	return &run
}
