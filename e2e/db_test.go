package e2e

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	svix "github.com/svix/svix-webhooks/go"

	"clerksync/store"
	"clerksync/store/embedded"
)

// sharedDB is the FerretDB the tests write to, each in databases of its own (newDatabase):
// started by the first test that needs it, stopped when all have ended.
var sharedDB struct {
	once sync.Once
	emb  *embedded.Server
	err  error
}

// ferret returns the shared FerretDB, starting it on first use in the suite's directory.
func ferret(t *testing.T) *embedded.Server {
	t.Helper()
	sharedDB.once.Do(func() {
		sharedDB.emb, sharedDB.err = embedded.Start(context.Background(), filepath.Join(suiteDir, "ferretdb"), slog.New(slog.DiscardHandler))
	})
	if sharedDB.err != nil {
		t.Fatalf("the shared FerretDB: %v", sharedDB.err)
	}
	return sharedDB.emb
}

// stopSharedDB stops the shared FerretDB, if it was started.
func stopSharedDB() {
	if sharedDB.emb != nil {
		sharedDB.emb.Stop()
	}
}

// database is a database of the shared FerretDB that one test alone uses.
type database struct {
	base  string       // the server's URI without a database: mongodb://127.0.0.1:PORT
	name  string       // the database's name
	uri   string       // base/name, a MONGODB_URI
	store *store.Store // the test's own connection to it
}

// databases counts the databases made, to name each one differently.
var databases atomic.Int64

// newDatabase makes a database of the test's own on the shared FerretDB, named after hint,
// with what the embedded database has in production (embedded.Server.Open): the collections,
// their indexes, and the _id lookup index, without which every write by _id scans the whole
// collection. The test reads it through its store, closed when the test ends.
func newDatabase(t *testing.T, hint string) database {
	t.Helper()
	emb := ferret(t)
	d := database{base: strings.TrimSuffix(emb.URI(), "/"), name: fmt.Sprintf("%s_%d", hint, databases.Add(1))}
	d.uri = d.base + "/" + d.name
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := emb.Open(ctx, d.name, store.WritesAuto)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close(context.Background()) })
	d.store = st
	return d
}

// startEmbeddedDB starts a FerretDB of the test's own and returns it and its URI without a
// trailing slash (append "/<database>"). It stops when the test ends.
func startEmbeddedDB(t *testing.T) (*embedded.Server, string) {
	t.Helper()
	emb, err := embedded.Start(context.Background(), t.TempDir(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emb.Stop)
	return emb, strings.TrimSuffix(emb.URI(), "/")
}

// openTestStore opens the store at uri for the test to read, closing it when the test ends.
func openTestStore(t *testing.T, uri, database string) *store.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := store.Open(ctx, uri, database)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close(context.Background()) })
	return st
}

// mustWebhook returns the Svix signer for secret.
func mustWebhook(t *testing.T, secret string) *svix.Webhook {
	t.Helper()
	wh, err := svix.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	return wh
}

// proxy forwards TCP connections to a target until it is cut.
type proxy struct {
	target string
	port   int

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}
}

// startProxy starts a proxy on a free loopback port in front of target.
func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	p := &proxy{target: target, conns: map[net.Conn]struct{}{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.port = ln.Addr().(*net.TCPAddr).Port
	p.serve(ln)
	t.Cleanup(p.cut)
	return p
}

func (p *proxy) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port)) }

func (p *proxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns[c], p.conns[up] = struct{}{}, struct{}{}
			p.mu.Unlock()
			go pipe(c, up)
			go pipe(up, c)
		}
	}()
}

func pipe(dst, src net.Conn) {
	_, _ = io.Copy(dst, src)
	dst.Close()
	src.Close()
}

// cut closes the listener and every connection: the database is gone; new connections are
// refused.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
	p.conns = map[net.Conn]struct{}{}
}

// restore listens again on the same port.
func (p *proxy) restore(t *testing.T) {
	ln, err := net.Listen("tcp", p.addr())
	if err != nil {
		t.Errorf("proxy: listen again on %s: %v", p.addr(), err)
		return
	}
	p.serve(ln)
}
