package reconcile

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"clerksync/store"
)

// ErrWrongInstance means the secret key reads another Clerk instance than the one the users
// collection follows (recorded by the first reconciliation or backfill that wrote to it):
// every stored user would look deleted. Nothing was written or deleted.
var ErrWrongInstance = errors.New("reconcile: CLERK_SECRET_KEY belongs to another Clerk instance than the one the users collection follows")

// WrongInstanceError is the refusal of a secret key that reads the Clerk instance Key when
// the database follows Recorded. It wraps ErrWrongInstance; its message says what to check,
// and how to make the database follow Key instead.
type WrongInstanceError struct {
	Key, Recorded string
}

// Error says which instances differ, and what to do.
func (e *WrongInstanceError) Error() string {
	return fmt.Sprintf("%v: the key reads Clerk instance %s, the database follows %s; nothing was written or deleted. "+
		"Check that CLERK_SECRET_KEY is the secret key of instance %s (Clerk Dashboard -> API keys). "+
		"If the database really must follow %s from now on, run `clerk-user-sync forget-clerk-instance` with the service's database settings "+
		`(or mongosh "$MONGODB_URI" --eval 'db.%s.deleteOne({_id: "%s"})'), then run again`,
		ErrWrongInstance, e.Key, e.Recorded, e.Recorded, e.Key, store.MetaCollection, store.ClerkInstanceDoc)
}

// Unwrap returns ErrWrongInstance.
func (e *WrongInstanceError) Unwrap() error { return ErrWrongInstance }

// InstanceSource is where an InstanceCheck reads the Clerk instance of the secret key.
// *clerk.API implements it.
type InstanceSource interface {
	// InstanceID returns the id (ins_...) of the Clerk instance the secret key belongs to.
	InstanceID(ctx context.Context) (string, error)
}

// InstanceRecord is where an InstanceCheck reads the Clerk instance the database follows.
// *store.Store implements it.
type InstanceRecord interface {
	// ClerkInstance returns the id of the Clerk instance the database follows, "" for none.
	ClerkInstance(ctx context.Context) (string, error)
}

// Instances is what an InstanceCheck found (and the memoized output of the check-instance
// step).
type Instances struct {
	// Instance is the Clerk instance the secret key reads; "" when Passed did not ask Clerk.
	Instance string `json:"instance"`
	// Recorded is the instance the database follows, "" when none is recorded yet.
	Recorded string `json:"recorded"`
}

// InstanceCheck is the one check that the secret key reads the Clerk instance the database
// follows: nothing is written for another instance, whose users would all look deleted (or
// be mixed with the database's). The reconciliations and the backfill Compare before they
// write; the on-demand sync asks Passed before each write, which shares one check among
// concurrent callers and remembers a pass. A nil *InstanceCheck is not usable; use
// NewInstanceCheck.
type InstanceCheck struct {
	key     InstanceSource
	db      InstanceRecord
	timeout time.Duration

	passed atomic.Bool
	flight singleflight.Group
}

// NewInstanceCheck returns the check of the key's instance (read from key) against the
// database's (read from db). timeout bounds each check that Passed shares.
func NewInstanceCheck(key InstanceSource, db InstanceRecord, timeout time.Duration) *InstanceCheck {
	return &InstanceCheck{key: key, db: db, timeout: timeout}
}

// Compare reads the instance the database follows and the key's, and returns both. It
// returns a *WrongInstanceError (wrapping ErrWrongInstance) when one is recorded and the key
// reads another, the database's error (wrapping store.ErrDatabase) when the record cannot be
// read, and Clerk's or the network's error when the key's instance cannot.
func (c *InstanceCheck) Compare(ctx context.Context) (Instances, error) {
	return c.compare(ctx, true)
}

// compare is Compare; without askAlways, it does not ask Clerk when the database follows no
// instance yet (there is nothing to compare with).
func (c *InstanceCheck) compare(ctx context.Context, askAlways bool) (Instances, error) {
	recorded, err := c.db.ClerkInstance(ctx)
	if err != nil {
		return Instances{}, err
	}
	if recorded == "" && !askAlways {
		return Instances{}, nil
	}
	key, err := c.key.InstanceID(ctx)
	if err != nil {
		return Instances{Recorded: recorded}, err
	}
	if recorded != "" && key != recorded {
		return Instances{Instance: key, Recorded: recorded}, &WrongInstanceError{Key: key, Recorded: recorded}
	}
	return Instances{Instance: key, Recorded: recorded}, nil
}

// Passed returns nil once the key's instance is the one the database follows (remembered: no
// later call asks again) or while the database follows none (asked again on the next call). It
// returns the errors of Compare otherwise (asked again on the next call), and ctx's error when
// ctx ends first. A call made while a check is in flight waits for that check's result
// instead of starting another; the check runs under its own timeout, so that one caller
// giving up does not fail the others.
func (c *InstanceCheck) Passed(ctx context.Context) error {
	if c.passed.Load() {
		return nil
	}
	ch := c.flight.DoChan("instance", func() (any, error) {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.timeout)
		defer cancel()
		inst, err := c.compare(cctx, false)
		if err == nil && inst.Recorded != "" {
			c.passed.Store(true)
		}
		return nil, err
	})
	select {
	case r := <-ch:
		return r.Err
	case <-ctx.Done():
		return ctx.Err()
	}
}
