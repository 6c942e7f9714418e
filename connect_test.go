package main

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/inngest/inngestgo/connect"
)

// fakeConn is a Connect worker connection whose state the test sets; Close blocks until
// release is closed, when it is not nil.
type fakeConn struct {
	mu      sync.Mutex
	state   connect.ConnectionState
	closed  int
	release chan struct{}
}

func (c *fakeConn) State() connect.ConnectionState {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

func (c *fakeConn) set(st connect.ConnectionState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.state = st
}

func (c *fakeConn) Close() error {
	if c.release != nil {
		<-c.release
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed++
	c.state = connect.ConnectionStateClosed
	return nil
}

func (c *fakeConn) closes() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// fakeDialer answers the worker's dials in turn from answers: a connection, an error, or
// (both nil) a dial that never returns, as inngestgo v0.15.1's can.
type fakeDialer struct {
	answers []dialAnswer
	n       atomic.Int64
}

type dialAnswer struct {
	conn *fakeConn
	err  error
}

func (d *fakeDialer) dial(ctx context.Context) (connect.WorkerConnection, error) {
	i := int(d.n.Add(1)) - 1
	if i >= len(d.answers) {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	a := d.answers[i]
	if a.conn == nil && a.err == nil {
		select {} // never returns
	}
	if a.err != nil {
		return nil, a.err
	}
	return a.conn, nil
}

// startWorker runs a worker over d with short timings, and returns it and a function that
// ends its run and waits for it.
func startWorker(t *testing.T, d *fakeDialer) (*connectWorker, func()) {
	t.Helper()
	w := newConnectWorker(d.dial, "sync-test-0", slog.New(slog.DiscardHandler))
	w.staleAfter, w.dialTimeout, w.watchEvery = 200*time.Millisecond, 200*time.Millisecond, 10*time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.run(ctx)
	}()
	stop := func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("the worker's run did not return within 5s of its context ending")
		}
	}
	t.Cleanup(stop)
	return w, stop
}

// waitUntil polls cond for up to 5s, failing the test with what.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("not within 5s: %s", what)
		}
	}
}

func TestConnectWorkerDialsUntilConnected(t *testing.T) {
	t.Parallel()
	conn := &fakeConn{state: connect.ConnectionStateActive}
	refused := errors.New("could not establish connection: connection refused")
	d := &fakeDialer{answers: []dialAnswer{{err: refused}, {conn: conn}}}
	w, stop := startWorker(t, d)
	if err := w.Ready(); err == nil || !strings.Contains(err.Error(), "not connected to Inngest yet") {
		t.Errorf("Ready before the first connection = %v; want not connected yet", err)
	}
	waitUntil(t, "Ready after a refused dial and a second one", func() bool { return w.Ready() == nil })
	conn.set(connect.ConnectionStateReconnecting)
	if err := w.Ready(); err == nil || !strings.Contains(err.Error(), "reconnecting") {
		t.Errorf("Ready while the SDK reconnects = %v; want reconnecting", err)
	}
	conn.set(connect.ConnectionStateActive)
	stop()
	w.close(time.Second)
	if got := conn.closes(); got != 1 {
		t.Errorf("the connection was closed %d times at shutdown; want 1", got)
	}
	if got := d.n.Load(); got != 2 {
		t.Errorf("%d dials; want 2", got)
	}
}

// TestConnectWorkerDialsAnewWhenStale: a connection that stays other than active (the SDK
// gave up reconnecting) is closed, and the worker dials again.
func TestConnectWorkerDialsAnewWhenStale(t *testing.T) {
	t.Parallel()
	first, second := &fakeConn{state: connect.ConnectionStateActive}, &fakeConn{state: connect.ConnectionStateActive}
	d := &fakeDialer{answers: []dialAnswer{{conn: first}, {conn: second}}}
	w, _ := startWorker(t, d)
	waitUntil(t, "the first connection", func() bool { return w.Ready() == nil })
	first.set(connect.ConnectionStateReconnecting)
	waitUntil(t, "a second dial after the first connection stayed down", func() bool { return d.n.Load() == 2 && w.Ready() == nil })
	if got := first.closes(); got != 1 {
		t.Errorf("the stale connection was closed %d times; want 1", got)
	}
}

// TestConnectWorkerLeavesAHungDialBehind: a dial that never returns (v0.15.1's start-up
// deadlock) is given up after dialTimeout, and the worker dials again; a shutdown during a
// hung dial does not wait for it.
func TestConnectWorkerLeavesAHungDialBehind(t *testing.T) {
	t.Parallel()
	conn := &fakeConn{state: connect.ConnectionStateActive}
	d := &fakeDialer{answers: []dialAnswer{{}, {conn: conn}}}
	w, _ := startWorker(t, d)
	waitUntil(t, "connected by a second dial after the first hung", func() bool { return w.Ready() == nil })

	hung := &fakeDialer{answers: []dialAnswer{{}}}
	_, stop := startWorker(t, hung)
	waitUntil(t, "the hung dial started", func() bool { return hung.n.Load() == 1 })
	stop() // fails the test if run waits for the dial
}

// TestConnectWorkerCloseTimeout: close returns at its timeout when the connection's Close
// does not (runs in flight that outlive SHUTDOWN_TIMEOUT).
func TestConnectWorkerCloseTimeout(t *testing.T) {
	t.Parallel()
	conn := &fakeConn{state: connect.ConnectionStateActive, release: make(chan struct{})}
	defer close(conn.release)
	d := &fakeDialer{answers: []dialAnswer{{conn: conn}}}
	w, stop := startWorker(t, d)
	waitUntil(t, "connected", func() bool { return w.Ready() == nil })
	stop()
	start := time.Now()
	w.close(100 * time.Millisecond)
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("close took %v with a timeout of 100ms", took)
	}
}
