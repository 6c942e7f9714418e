package reconcile_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"clerksync/reconcile"
)

// keySource is a Clerk whose secret key reads instance; each call is counted, and waits for
// release when it is set.
type keySource struct {
	instance string
	err      error
	release  chan struct{} // nil: answer at once
	calls    atomic.Int32
}

func (k *keySource) InstanceID(ctx context.Context) (string, error) {
	k.calls.Add(1)
	if k.release != nil {
		select {
		case <-k.release:
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	return k.instance, k.err
}

// record is a database that follows instance; each read is counted.
type record struct {
	instance string
	calls    atomic.Int32
}

func (r *record) ClerkInstance(context.Context) (string, error) {
	r.calls.Add(1)
	return r.instance, nil
}

// TestInstanceCheckPassed: what InstanceCheck.Passed answers, and when it asks Clerk and the
// database again.
func TestInstanceCheckPassed(t *testing.T) {
	t.Parallel()
	const ours, theirs = "ins_ours", "ins_theirs"
	clerkDown := errors.New("clerk: 503")
	tests := []struct {
		name       string
		key        *keySource
		recorded   string
		check      func(t *testing.T, err error)
		wantKey    int32 // Clerk asked, over three calls
		wantRecord int32 // the database read, over three calls
	}{{
		name: "the key reads the database's instance: asked once, remembered",
		key:  &keySource{instance: ours}, recorded: ours,
		check:   func(t *testing.T, err error) { noError(t, err) },
		wantKey: 1, wantRecord: 1,
	}, {
		name: "no instance recorded yet: passes without asking Clerk, reads the record again",
		key:  &keySource{instance: theirs}, recorded: "",
		check:   func(t *testing.T, err error) { noError(t, err) },
		wantKey: 0, wantRecord: 3,
	}, {
		name: "another instance: refused each time, asked again",
		key:  &keySource{instance: theirs}, recorded: ours,
		check: func(t *testing.T, err error) {
			t.Helper()
			var wrong *reconcile.WrongInstanceError
			if !errors.As(err, &wrong) || !errors.Is(err, reconcile.ErrWrongInstance) || wrong.Key != theirs || wrong.Recorded != ours {
				t.Errorf("Passed = %v; want a *WrongInstanceError{Key: %s, Recorded: %s} wrapping ErrWrongInstance", err, theirs, ours)
			}
		},
		wantKey: 3, wantRecord: 3,
	}, {
		name: "Clerk fails: its error each time, asked again",
		key:  &keySource{err: clerkDown}, recorded: ours,
		check: func(t *testing.T, err error) {
			t.Helper()
			if !errors.Is(err, clerkDown) {
				t.Errorf("Passed = %v; want Clerk's error %v", err, clerkDown)
			}
		},
		wantKey: 3, wantRecord: 3,
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db := &record{instance: tc.recorded}
			c := reconcile.NewInstanceCheck(tc.key, db, time.Minute)
			for range 3 {
				tc.check(t, c.Passed(t.Context()))
			}
			if got := tc.key.calls.Load(); got != tc.wantKey {
				t.Errorf("Clerk asked %d times over 3 calls; want %d", got, tc.wantKey)
			}
			if got := db.calls.Load(); got != tc.wantRecord {
				t.Errorf("record read %d times over 3 calls; want %d", got, tc.wantRecord)
			}
		})
	}
}

// TestInstanceCheckShared: concurrent calls of Passed share the check in flight (here one
// that refuses, so that nothing is remembered); a caller that gives up gets its context's
// error without failing the others; the shared check ends at its own timeout.
func TestInstanceCheckShared(t *testing.T) {
	t.Parallel()
	t.Run("concurrent calls share one check", func(t *testing.T) {
		t.Parallel()
		key := &keySource{instance: "ins_theirs", release: make(chan struct{})}
		c := reconcile.NewInstanceCheck(key, &record{instance: "ins_ours"}, time.Minute)
		const n = 20
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { errs[i] = c.Passed(context.Background()) })
		}
		time.Sleep(200 * time.Millisecond) // all n join the check held in Clerk
		close(key.release)
		wg.Wait()
		for i, err := range errs {
			if !errors.Is(err, reconcile.ErrWrongInstance) {
				t.Errorf("call %d: Passed = %v; want ErrWrongInstance", i, err)
			}
		}
		// One more check is allowed for a call that started late on a loaded machine.
		if got := key.calls.Load(); got < 1 || got > 2 {
			t.Errorf("%d concurrent calls asked Clerk %d times; want once (one shared check)", n, got)
		}
	})
	t.Run("a caller giving up does not fail the others", func(t *testing.T) {
		t.Parallel()
		key := &keySource{instance: "ins_ours", release: make(chan struct{})}
		c := reconcile.NewInstanceCheck(key, &record{instance: "ins_ours"}, time.Minute)
		impatient, giveUp := context.WithCancel(context.Background())
		first := make(chan error, 1)
		go func() { first <- c.Passed(impatient) }()
		for key.calls.Load() == 0 {
			time.Sleep(time.Millisecond)
		}
		second := make(chan error, 1)
		go func() { second <- c.Passed(context.Background()) }()
		giveUp()
		if err := <-first; !errors.Is(err, context.Canceled) {
			t.Errorf("Passed of the caller that gave up = %v; want context.Canceled", err)
		}
		close(key.release)
		if err := <-second; err != nil {
			t.Errorf("Passed of the caller that waited = %v; want nil (the check went on)", err)
		}
		if got := key.calls.Load(); got != 1 {
			t.Errorf("Clerk asked %d times; want once (the second caller shares the check the first one started)", got)
		}
	})
	t.Run("the shared check ends at its timeout", func(t *testing.T) {
		t.Parallel()
		key := &keySource{instance: "ins_ours", release: make(chan struct{})} // never released
		c := reconcile.NewInstanceCheck(key, &record{instance: "ins_ours"}, 50*time.Millisecond)
		if err := c.Passed(context.Background()); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Passed with Clerk never answering = %v; want context.DeadlineExceeded at the check's timeout", err)
		}
	})
}

// noError fails the test when err is not nil.
func noError(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Errorf("Passed = %v; want nil", err)
	}
}
