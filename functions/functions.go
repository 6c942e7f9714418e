// Package functions holds the Inngest functions that write Clerk's users, organizations and
// organization memberships to the store: sync-user-from-clerk (clerk/user.created),
// update-user-from-clerk (clerk/user.updated) and delete-user-with-clerk (clerk/user.deleted);
// sync-organization-from-clerk, update-organization-from-clerk and
// delete-organization-with-clerk (clerk/organization.created, .updated, .deleted);
// sync-membership-from-clerk, update-membership-from-clerk and delete-membership-with-clerk
// (clerk/organizationMembership.created, .updated, .deleted); and record-sync-failure, which
// records their permanent failures. Each decodes its event's data itself (decode.go), so that
// data it cannot read fails the run at once instead of being retried; does its database work
// inside step.Run, so Inngest retries it when the database fails; and relies on the store's
// conditional writes (not on delivery order) for correctness. With Config.Events, the step
// that applies a change also sends its event (package syncevent), after the write. One
// function per file; run.go
// holds the body all nine share (run: the decoding, the step, the log lines, the metrics and
// the error policy), and upsert.go and upsert_org.go what the create and update functions
// share.
package functions

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/inngest/inngest/pkg/enums"
	"github.com/inngest/inngestgo"

	clerkevent "clerksync/clerk/event"
	"clerksync/store"
)

// Function IDs, as the Inngest dashboard shows them (prefixed with the app ID).
const (
	SyncUserID   = "sync-user-from-clerk"
	UpdateUserID = "update-user-from-clerk"
	DeleteUserID = "delete-user-with-clerk"

	SyncOrganizationID   = "sync-organization-from-clerk"
	UpdateOrganizationID = "update-organization-from-clerk"
	DeleteOrganizationID = "delete-organization-with-clerk"

	SyncMembershipID   = "sync-membership-from-clerk"
	UpdateMembershipID = "update-membership-from-clerk"
	DeleteMembershipID = "delete-membership-with-clerk"
)

// syncFunctions are the ids of the functions whose permanent failures record-sync-failure
// records.
var syncFunctions = []string{
	SyncUserID, UpdateUserID, DeleteUserID,
	SyncOrganizationID, UpdateOrganizationID, DeleteOrganizationID,
	SyncMembershipID, UpdateMembershipID, DeleteMembershipID,
}

// maxRetries is how often Inngest retries a failed step (with its backoff) before the run
// fails for good: enough to ride out a database outage of hours.
const maxRetries = 10

// UserConcurrencyKey is the key of the Inngest concurrency limit that serialises every run
// writing one user: the same expression in the environment's scope in the three user
// functions, so that one user's create, update and delete runs never overlap, on any replica.
// The store's guarded writes stay the correctness guarantee; the key removes the races that
// make them retry, and makes several replicas safe on a database whose conditional updates are
// not atomic (FerretDB).
const UserConcurrencyKey = `"clerk-user:" + event.data.id`

// The keys of the Inngest concurrency limit that serialises every run writing one
// organization or its memberships: two expressions, one per payload shape, that evaluate to the
// same string, "clerk-org:<organization id>", in the environment's scope, so that an
// organization's create, update and delete runs and the runs of its memberships never overlap,
// on any replica. Like UserConcurrencyKey it only removes races: the store's guarded writes
// stay the correctness guarantee (in particular between a membership and its user's deletion,
// which runs under the user's key).
const (
	// OrgConcurrencyKey is the key of the organization functions, whose data.id is the
	// organization's id.
	OrgConcurrencyKey = `"clerk-org:" + event.data.id`
	// MembershipConcurrencyKey is the key of the membership functions, whose data.organization
	// is the membership's organization.
	MembershipConcurrencyKey = `"clerk-org:" + event.data.organization.id`
)

// userConcurrency is the limit of one run at a time per UserConcurrencyKey.
func userConcurrency() []inngestgo.ConfigStepConcurrency { return concurrencyOne(UserConcurrencyKey) }

// concurrencyOne is the limit of one run at a time per value of the key expression, across the
// environment.
func concurrencyOne(key string) []inngestgo.ConfigStepConcurrency {
	return []inngestgo.ConfigStepConcurrency{{Limit: 1, Key: &key, Scope: enums.ConcurrencyScopeEnv}}
}

// UserStore is the storage the functions write to. *store.Store implements it. Each write
// tells what it changed (store.Change), for the event the functions emit after it.
type UserStore interface {
	// UpsertUserChange writes u unless the stored user is as new or newer, or deleted.
	UpsertUserChange(ctx context.Context, u store.User) (store.Change, error)
	// DeleteUserChange turns the user into a tombstone that no later upsert brings back.
	DeleteUserChange(ctx context.Context, id string, deletedAt int64) (store.Change, error)
}

// OrgStore is the storage the organization and membership functions write to. *store.Store
// implements it. Each write tells what it changed (store.Change).
type OrgStore interface {
	// UpsertOrganizationChange writes o unless the stored organization is as new or newer, or
	// deleted.
	UpsertOrganizationChange(ctx context.Context, o store.Organization) (store.Change, error)
	// DeleteOrganizationChange turns the organization into a tombstone that no later upsert
	// brings back, and deletes its memberships.
	DeleteOrganizationChange(ctx context.Context, id string, deletedAt int64) (store.Change, error)
	// UpsertMembershipChange writes m unless the stored membership is as new or newer, or
	// deleted; it leaves no live membership in a deleted organization or of a deleted user.
	UpsertMembershipChange(ctx context.Context, m store.Membership) (store.Change, error)
	// DeleteMembershipChange turns the membership into a tombstone that no later upsert brings
	// back.
	DeleteMembershipChange(ctx context.Context, id string, deletedAt int64) (store.Change, error)
}

// EventSender sends an event to Inngest: inngestgo.Client implements it. Send returns the
// event's id, or an error when Inngest did not take the event.
type EventSender interface {
	Send(ctx context.Context, evt any) (string, error)
}

// The service's store is what New looks for in its users argument.
var _ OrgStore = (*store.Store)(nil)

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
	// Orgs is where the organization and membership functions write. Nil: New's users
	// argument, when it implements OrgStore (as *store.Store does); with neither, Register
	// leaves those six functions out (for tests whose store knows only users).
	Orgs OrgStore
	// Events, when not nil, is where the functions send the event of each change they apply
	// (package syncevent), inside the step that writes it: an applied change, or a retry
	// that finds its own version already stored, sends one (with the same id); a stale,
	// duplicate-of-older or refused change sends none. A failed send fails the step, which
	// Inngest retries. Nil: no events (SYNC_EVENTS unset).
	Events EventSender
	// WithoutUserOrdering leaves out the concurrency limits that serialise the runs of one
	// user (UserConcurrencyKey) and of one organization (OrgConcurrencyKey,
	// MembershipConcurrencyKey): only for the test that shows what the limits prevent.
	WithoutUserOrdering bool
}

// Functions holds the dependencies of the functions.
type Functions struct {
	users    UserStore
	orgs     OrgStore // nil: no organization and membership functions
	failures FailureStore
	logger   *slog.Logger
	cfg      Config
}

// New returns the functions, writing users to users, organizations and memberships to
// cfg.Orgs (or to users, when it implements OrgStore too), recording the events of a batch that
// fail for good in failures, and logging to logger.
func New(users UserStore, failures FailureStore, logger *slog.Logger, cfg Config) *Functions {
	if cfg.BatchWait <= 0 {
		cfg.BatchWait = time.Second
	}
	if cfg.Metrics == nil {
		cfg.Metrics = nopMetrics{}
	}
	orgs := cfg.Orgs
	if orgs == nil {
		orgs, _ = users.(OrgStore)
	}
	return &Functions{users: users, orgs: orgs, failures: failures, logger: logger, cfg: cfg}
}

// Register creates the functions on client, so that client's serve handler offers them to
// Inngest: the three user functions, and the six organization and membership functions when
// there is an OrgStore (see Config.Orgs). It returns an error if Config.AppID is not client's
// app id, or if the SDK rejects a function's configuration.
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
		inngestgo.EventTrigger(clerkevent.UserCreated, nil),
		f.SyncUser,
	); err != nil {
		return err
	}
	if _, err := inngestgo.CreateFunction(client,
		inngestgo.FunctionOpts{ID: UpdateUserID, Name: "Update user from Clerk", Retries: inngestgo.IntPtr(maxRetries), BatchEvents: batch, Concurrency: upsertLimit},
		inngestgo.EventTrigger(clerkevent.UserUpdated, nil),
		f.UpdateUser,
	); err != nil {
		return err
	}
	if _, err := inngestgo.CreateFunction(client,
		inngestgo.FunctionOpts{ID: DeleteUserID, Name: "Delete user with Clerk", Retries: inngestgo.IntPtr(maxRetries), Concurrency: perUser},
		inngestgo.EventTrigger(clerkevent.UserDeleted, nil),
		f.DeleteUser,
	); err != nil {
		return err
	}
	if f.orgs == nil {
		f.logger.Warn("no organization store: the organization and membership functions are not registered")
		return nil
	}
	return f.registerOrgs(client)
}

// registerOrgs creates the six organization and membership functions on client: one run at a
// time per organization, across the six functions and every replica (unbatched).
func (f *Functions) registerOrgs(client inngestgo.Client) error {
	perOrg, perMembershipOrg := concurrencyOne(OrgConcurrencyKey), concurrencyOne(MembershipConcurrencyKey)
	if f.cfg.WithoutUserOrdering {
		perOrg, perMembershipOrg = nil, nil
	}
	opts := func(id, name string, limit []inngestgo.ConfigStepConcurrency) inngestgo.FunctionOpts {
		return inngestgo.FunctionOpts{ID: id, Name: name, Retries: inngestgo.IntPtr(maxRetries), Concurrency: limit}
	}
	if _, err := inngestgo.CreateFunction(client, opts(SyncOrganizationID, "Sync organization from Clerk", perOrg),
		inngestgo.EventTrigger(clerkevent.OrganizationCreated, nil), f.SyncOrganization); err != nil {
		return err
	}
	if _, err := inngestgo.CreateFunction(client, opts(UpdateOrganizationID, "Update organization from Clerk", perOrg),
		inngestgo.EventTrigger(clerkevent.OrganizationUpdated, nil), f.UpdateOrganization); err != nil {
		return err
	}
	if _, err := inngestgo.CreateFunction(client, opts(DeleteOrganizationID, "Delete organization with Clerk", perOrg),
		inngestgo.EventTrigger(clerkevent.OrganizationDeleted, nil), f.DeleteOrganization); err != nil {
		return err
	}
	if _, err := inngestgo.CreateFunction(client, opts(SyncMembershipID, "Sync membership from Clerk", perMembershipOrg),
		inngestgo.EventTrigger(clerkevent.MembershipCreated, nil), f.SyncMembership); err != nil {
		return err
	}
	if _, err := inngestgo.CreateFunction(client, opts(UpdateMembershipID, "Update membership from Clerk", perMembershipOrg),
		inngestgo.EventTrigger(clerkevent.MembershipUpdated, nil), f.UpdateMembership); err != nil {
		return err
	}
	_, err := inngestgo.CreateFunction(client, opts(DeleteMembershipID, "Delete membership with Clerk", perMembershipOrg),
		inngestgo.EventTrigger(clerkevent.MembershipDeleted, nil), f.DeleteMembership)
	return err
}

// Result is what a function run returns; the Inngest dashboard shows it as the run's output.
type Result struct {
	UserID  string        `json:"user_id"`
	Outcome store.Outcome `json:"outcome"`
}

// runLogger returns the logger for one run, carrying the ids that tie a log line to the
// webhook delivery and the Inngest event, then ids (the user's, the organization's, the
// membership's: key, value pairs), then the run's.
func (f *Functions) runLogger(function string, eventID *string, ctx inngestgo.InputCtx, ids ...any) *slog.Logger {
	id := ""
	if eventID != nil {
		id = *eventID
	}
	attrs := append([]any{
		"function", function,
		"event_id", id,
		"svix_id", clerkevent.SvixID(id),
	}, ids...)
	return f.logger.With(append(attrs, "run_id", ctx.RunID, "attempt", ctx.Attempt)...)
}
