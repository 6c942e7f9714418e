package functions_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"testing"

	inngesterrors "github.com/inngest/inngestgo/errors"

	"clerksync/clerk"
	clerkevent "clerksync/clerk/event"
	"clerksync/functions"
	"clerksync/store"
)

// failingStore is a store of users, organizations and memberships whose every write fails with
// err.
type failingStore struct{ err error }

func (s failingStore) UpsertUserChange(context.Context, store.User) (store.Change, error) {
	return store.Change{}, s.err
}
func (s failingStore) DeleteUserChange(context.Context, string, int64) (store.Change, error) {
	return store.Change{}, s.err
}
func (s failingStore) UpsertOrganizationChange(context.Context, store.Organization) (store.Change, error) {
	return store.Change{}, s.err
}
func (s failingStore) DeleteOrganizationChange(context.Context, string, int64) (store.Change, error) {
	return store.Change{}, s.err
}
func (s failingStore) UpsertMembershipChange(context.Context, store.Membership) (store.Change, error) {
	return store.Change{}, s.err
}
func (s failingStore) DeleteMembershipChange(context.Context, string, int64) (store.Change, error) {
	return store.Change{}, s.err
}

// TestStoreErrorPolicy: the nine functions treat the store's errors alike. A write the store
// refuses for its input (store.ErrInvalidUser, ErrInvalidOrganization, ErrInvalidMembership),
// which no retry changes, fails with a NoRetryError counted as invalid; a write the database
// fails (store.ErrDatabase) fails with an ordinary error, which Inngest retries, counted as
// error. Both wrap the store's error.
func TestStoreErrorPolicy(t *testing.T) {
	t.Parallel()
	user := clerkUser("user_policy", "Pol", "Icy", "policy@x.org", "", t1)
	org := clerkOrg("org_policy", "Policy", "policy", t1)
	mem := clerkMember("orgmem_policy", "org_policy", "user_policy", "org:member", t1)
	type function = func(*functions.Functions, context.Context, functions.Input) (any, error)
	fns := []struct {
		id      string
		run     function
		in      functions.Input
		invalid error // the store's error for input it refuses, of the function's kind
	}{
		{functions.SyncUserID, (*functions.Functions).SyncUser, input(clerkevent.UserCreated, user, t1), store.ErrInvalidUser},
		{functions.UpdateUserID, (*functions.Functions).UpdateUser, input(clerkevent.UserUpdated, user, t1), store.ErrInvalidUser},
		{functions.DeleteUserID, (*functions.Functions).DeleteUser, input(clerkevent.UserDeleted, clerk.DeletedObject{ID: user.ID, Deleted: true}, t2), store.ErrInvalidUser},
		{functions.SyncOrganizationID, (*functions.Functions).SyncOrganization, input(clerkevent.OrganizationCreated, org, t1), store.ErrInvalidOrganization},
		{functions.UpdateOrganizationID, (*functions.Functions).UpdateOrganization, input(clerkevent.OrganizationUpdated, org, t1), store.ErrInvalidOrganization},
		{functions.DeleteOrganizationID, (*functions.Functions).DeleteOrganization, input(clerkevent.OrganizationDeleted, clerk.DeletedOrganization{ID: org.ID, Deleted: true}, t2), store.ErrInvalidOrganization},
		{functions.SyncMembershipID, (*functions.Functions).SyncMembership, input(clerkevent.MembershipCreated, mem, t1), store.ErrInvalidMembership},
		{functions.UpdateMembershipID, (*functions.Functions).UpdateMembership, input(clerkevent.MembershipUpdated, mem, t1), store.ErrInvalidMembership},
		{functions.DeleteMembershipID, (*functions.Functions).DeleteMembership, input(clerkevent.MembershipDeleted, mem, t2), store.ErrInvalidMembership},
	}
	for _, policy := range []struct {
		name    string
		err     func(invalid error) error
		noRetry bool
		outcome string
	}{
		{"input refused", func(invalid error) error { return fmt.Errorf("%w: refused", invalid) }, true, functions.OutcomeInvalid},
		{"database down", func(error) error { return fmt.Errorf("%w: connection reset", store.ErrDatabase) }, false, functions.OutcomeError},
	} {
		for _, fn := range fns {
			t.Run(policy.name+"/"+fn.id, func(t *testing.T) {
				t.Parallel()
				want := policy.err(fn.invalid)
				m := &countingMetrics{}
				st := failingStore{err: want}
				f := functions.New(st, nil, slog.New(slog.NewTextHandler(t.Output(), nil)), functions.Config{AppID: testAppID, Metrics: m})
				res, err := fn.run(f, t.Context(), fn.in)
				if res != nil || !errors.Is(err, want) || inngesterrors.IsNoRetryError(err) != policy.noRetry {
					t.Errorf("%s with the store failing with %q = %v, %v (no-retry %t); want an error wrapping it, no-retry %t",
						fn.id, want, res, err, inngesterrors.IsNoRetryError(err), policy.noRetry)
				}
				if got, want := m.snapshot(), map[string]int{fn.id + "/" + policy.outcome: 1}; !reflect.DeepEqual(got, want) {
					t.Errorf("%s: FunctionRun calls = %v; want %v", fn.id, got, want)
				}
			})
		}
	}
}
