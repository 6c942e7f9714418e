package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/inngest/inngestgo"

	"clerksync/store/embedded"
	"clerksync/tools/internal/proc"
)

// pgBinDirs are where Debian's postgresql package puts its programs.
var pgBinDirs = []string{"/usr/lib/postgresql/*/bin"}

// ensurePackages installs Debian's postgresql and redis-server when their programs are
// missing (apt-get, as root).
func ensurePackages(ctx context.Context) error {
	var pkgs []string
	if lookPath("initdb", pgBinDirs...) == "" || lookPath("postgres", pgBinDirs...) == "" {
		pkgs = append(pkgs, "postgresql")
	}
	if lookPath("redis-server") == "" {
		pkgs = append(pkgs, "redis-server")
	}
	if len(pkgs) == 0 {
		return nil
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("%s missing and not running as root: install them (apt-get install -y %s) or run as root", strings.Join(pkgs, " and "), strings.Join(pkgs, " "))
	}
	logf("installing %s with apt-get", strings.Join(pkgs, " "))
	install := func() error {
		cmd := exec.CommandContext(ctx, "apt-get", append([]string{"install", "-y", "--no-install-recommends"}, pkgs...)...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("apt-get install %s: %w\n%s", strings.Join(pkgs, " "), err, tail(out, 2000))
		}
		return nil
	}
	if err := install(); err != nil {
		logf("apt-get install failed; running apt-get update and trying again")
		cmd := exec.CommandContext(ctx, "apt-get", "update")
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("apt-get update: %w\n%s", err, tail(out, 2000))
		}
		if err := install(); err != nil {
			return err
		}
	}
	if lookPath("initdb", pgBinDirs...) == "" || lookPath("redis-server") == "" {
		return fmt.Errorf("installed %s, but initdb or redis-server is still missing", strings.Join(pkgs, " "))
	}
	return nil
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// postgres is a PostgreSQL server in a temporary data directory, run as an unprivileged
// user, on 127.0.0.1.
type postgres struct {
	p       *proc.Proc
	port    int
	binDir  string
	user    string
	dataDir string
}

// unprivileged returns the uid and gid of the user PostgreSQL runs as: postgres, else nobody
// (0, 0 and the current user when this program is not root).
func unprivileged() (name string, uid, gid uint32, err error) {
	if os.Geteuid() != 0 {
		u, err := user.Current()
		if err != nil {
			return "", 0, 0, err
		}
		return u.Username, 0, 0, nil
	}
	for _, n := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(n)
		if err != nil {
			continue
		}
		uid, _ := strconv.ParseUint(u.Uid, 10, 32)
		gid, _ := strconv.ParseUint(u.Gid, 10, 32)
		return n, uint32(uid), uint32(gid), nil
	}
	return "", 0, 0, fmt.Errorf("no unprivileged user (postgres or nobody) to run PostgreSQL as")
}

// startPostgres runs initdb and starts the server under dir (which other users can traverse).
func startPostgres(ctx context.Context, dir string, cl *cleanups) (*postgres, error) {
	initdb := lookPath("initdb", pgBinDirs...)
	if initdb == "" {
		return nil, fmt.Errorf("initdb not found")
	}
	if real, err := filepath.EvalSymlinks(initdb); err == nil {
		initdb = real
	}
	binDir := filepath.Dir(initdb)
	name, uid, gid, err := unprivileged()
	if err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "pgdata")
	if err := os.Mkdir(data, 0o700); err != nil {
		return nil, err
	}
	if uid != 0 {
		if err := os.Chown(data, int(uid), int(gid)); err != nil {
			return nil, err
		}
	}
	env := cleanEnv("LC_ALL=C", "LANG=C")
	logPath := filepath.Join(dir, "postgres.log")
	ini, err := proc.Start(proc.Spec{Name: "initdb", Args: []string{initdb, "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"},
		Env: env, Dir: data, Log: logPath, UID: uid, GID: gid})
	if err != nil {
		return nil, err
	}
	<-ini.Done()
	if code := ini.Cmd.ProcessState.ExitCode(); code != 0 {
		return nil, fmt.Errorf("initdb (as %s) exited %d:\n%s", name, code, ini.LogTail(3000))
	}
	port, err := proc.FreePort()
	if err != nil {
		return nil, err
	}
	p, err := proc.Start(proc.Spec{Name: "postgres", Args: []string{filepath.Join(binDir, "postgres"), "-D", data, "-p", strconv.Itoa(port),
		"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=", "-c", "max_connections=300",
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "shared_buffers=128MB"},
		Env: env, Dir: data, Log: logPath, UID: uid, GID: gid})
	if err != nil {
		return nil, err
	}
	// SIGQUIT: immediate shutdown; the data is thrown away.
	cl.add(func() { p.Stop(syscall.SIGQUIT, 10*time.Second) })
	pg := &postgres{p: p, port: port, binDir: binDir, user: name, dataDir: data}
	err = proc.WaitFor(ctx, "PostgreSQL", p, 60*time.Second, 200*time.Millisecond, func() bool {
		return exec.Command(filepath.Join(binDir, "pg_isready"), "-q", "-h", "127.0.0.1", "-p", strconv.Itoa(port)).Run() == nil
	})
	if err != nil {
		return nil, err
	}
	return pg, nil
}

// createDB creates database name and returns its URI.
func (pg *postgres) createDB(name string) (string, error) {
	out, err := exec.Command(filepath.Join(pg.binDir, "createdb"), "-h", "127.0.0.1", "-p", strconv.Itoa(pg.port), "-U", "postgres", name).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("createdb %s: %w: %s", name, err, out)
	}
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", pg.port, name), nil
}

// startRedis starts a Redis server without persistence on a free port, and returns it and
// its URI.
func startRedis(ctx context.Context, dir string, cl *cleanups) (*proc.Proc, string, error) {
	bin := lookPath("redis-server")
	if bin == "" {
		return nil, "", fmt.Errorf("redis-server not found")
	}
	port, err := proc.FreePort()
	if err != nil {
		return nil, "", err
	}
	p, err := proc.Start(proc.Spec{Name: "redis-server", Args: []string{bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--daemonize", "no", "--dir", dir, "--maxclients", "4096"},
		Env: cleanEnv(), Dir: dir, Log: filepath.Join(dir, "redis.log")})
	if err != nil {
		return nil, "", err
	}
	cl.add(func() { p.Stop(syscall.SIGTERM, 10*time.Second) })
	err = proc.WaitFor(ctx, "Redis", p, 30*time.Second, 100*time.Millisecond, func() bool {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err != nil {
			return false
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(time.Second))
		if _, err := io.WriteString(c, "PING\r\n"); err != nil {
			return false
		}
		line, err := bufio.NewReader(c).ReadString('\n')
		return err == nil && strings.HasPrefix(line, "+PONG")
	})
	if err != nil {
		return nil, "", err
	}
	return p, fmt.Sprintf("redis://127.0.0.1:%d", port), nil
}

// ferretHelper is this program run again with -ferretdb-helper: a FerretDB server
// (embedded.Start) in a process of its own, shared by the replicas.
type ferretHelper struct {
	p     *proc.Proc
	uri   string // mongodb://127.0.0.1:<port>/ (no database)
	cmdW  *os.File
	lines *bufio.Reader
}

// startFerret starts the helper with its data under dir.
func startFerret(ctx context.Context, dir string, cl *cleanups) (*ferretHelper, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	p, err := proc.Start(proc.Spec{Name: "ferretdb", Args: []string{self, "-ferretdb-helper", filepath.Join(dir, "ferretdb")},
		Env: cleanEnv(), Dir: dir, Log: filepath.Join(dir, "ferretdb.log"), Stdin: inR, Stdout: outW})
	inR.Close()
	outW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		return nil, err
	}
	f := &ferretHelper{p: p, cmdW: inW, lines: bufio.NewReader(outR)}
	cl.add(func() {
		inW.Close() // the helper stops FerretDB and exits at the end of its input
		select {
		case <-p.Done():
		case <-time.After(10 * time.Second):
		}
		p.Stop(syscall.SIGKILL, time.Second)
		outR.Close()
	})
	type result struct {
		line string
		err  error
	}
	got := make(chan result, 1)
	go func() {
		line, err := f.lines.ReadString('\n')
		got <- result{line, err}
	}()
	select {
	case r := <-got:
		uri, ok := strings.CutPrefix(strings.TrimSpace(r.line), "uri ")
		if r.err != nil || !ok {
			return nil, fmt.Errorf("FerretDB helper: %q, %v; its log:\n%s", r.line, r.err, p.LogTail(3000))
		}
		f.uri = strings.TrimSuffix(uri, "/") + "/"
	case <-time.After(60 * time.Second):
		return nil, fmt.Errorf("FerretDB helper did not start within 60s; its log:\n%s", p.LogTail(3000))
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return f, nil
}

// indexIDs asks the helper to give database's collections FerretDB's missing _id lookup index
// (embedded.Server.IndexIDs), as the service does for its own embedded database: without it
// every write on FerretDB scans the collection.
func (f *ferretHelper) indexIDs(database string) error {
	if _, err := fmt.Fprintf(f.cmdW, "index %s\n", database); err != nil {
		return err
	}
	line, err := f.lines.ReadString('\n')
	if err != nil {
		return err
	}
	if line = strings.TrimSpace(line); line != "ok" {
		return fmt.Errorf("FerretDB helper: %s", line)
	}
	return nil
}

// runFerretHelper is the helper's main: it starts FerretDB under dir, prints "uri <uri>",
// then answers "index <database>" lines until its input ends, then stops FerretDB.
func runFerretHelper(dir string) int {
	emb, err := embedded.Start(context.Background(), dir, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("uri %s\n", emb.URI())
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && f[0] == "index" {
			if err := emb.IndexIDs(context.Background(), f[1]); err != nil {
				fmt.Printf("error %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
				continue
			}
			fmt.Println("ok")
			continue
		}
		fmt.Printf("error unknown command %q\n", sc.Text())
	}
	emb.Stop()
	return 0
}

// inngestServer is `inngest start`: the self-hosted Inngest server, on PostgreSQL and Redis.
type inngestServer struct {
	p           *proc.Proc
	url         string
	signingKey  string // hex, as `inngest start` takes it
	gatewayPort int    // the Connect gateway's WebSocket port (--connect-gateway-port)
	grpcPorts   [2]int // the Connect gateway's and executor's gRPC ports
}

// startInngest starts `inngest start` with the given stores and keys, syncing appURL (none
// when empty: Connect mode), with Connect gRPC ports of its own
// (INNGEST_CONNECT_GATEWAY_GRPC_PORT and INNGEST_CONNECT_EXECUTOR_GRPC_PORT, which
// tools/inngest's command reads): the server's own 50052 and 50053 may belong to another
// Inngest server on this machine, and a gateway that shares them with another server's
// executor loses its runs.
func startInngest(ctx context.Context, bin, dir, pgURI, redisURI, eventKey, signingKey, appURL string, retryInterval int, cl *cleanups) (*inngestServer, error) {
	var ports [4]int // HTTP API, Connect gateway, gateway gRPC, executor gRPC
	for i := 0; i < len(ports); {
		p, err := proc.FreePort()
		if err != nil {
			return nil, err
		}
		if !slices.Contains(ports[:i], p) {
			ports[i] = p
			i++
		}
	}
	port, gw := ports[0], ports[1]
	args := []string{bin, "start", "--host", "127.0.0.1", "--port", strconv.Itoa(port), "--connect-gateway-port", strconv.Itoa(gw),
		"--postgres-uri", pgURI, "--redis-uri", redisURI, "--event-key", eventKey, "--signing-key", signingKey,
		"--no-ui", "--log-level", "warn"}
	if appURL != "" {
		args = append(args, "-u", appURL)
	}
	if retryInterval > 0 {
		args = append(args, "--retry-interval", strconv.Itoa(retryInterval))
	}
	env := cleanEnv("INNGEST_CONNECT_GATEWAY_GRPC_PORT="+strconv.Itoa(ports[2]), "INNGEST_CONNECT_EXECUTOR_GRPC_PORT="+strconv.Itoa(ports[3]))
	// The working directory is the run's own: `inngest start` reads an inngest.json from its
	// directory and every parent, and the repository has one (the dev server's).
	p, err := proc.Start(proc.Spec{Name: "inngest", Args: args, Env: env, Dir: dir, Log: filepath.Join(dir, "inngest.log")})
	if err != nil {
		return nil, err
	}
	cl.add(func() { p.Stop(syscall.SIGTERM, 5*time.Second) }) // its data is thrown away
	s := &inngestServer{p: p, url: fmt.Sprintf("http://127.0.0.1:%d", port), signingKey: signingKey, gatewayPort: gw, grpcPorts: [2]int{ports[2], ports[3]}}
	err = proc.WaitFor(ctx, "Inngest server", p, 90*time.Second, 200*time.Millisecond, func() bool {
		c := http.Client{Timeout: 2 * time.Second}
		resp, err := c.Get(s.url + "/health")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return true // any answer: it listens
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// signedRequest returns a request without a body to url, signed as the server signs its
// requests to apps (X-Inngest-Signature, with the SDK's form of the signing key).
func (s *inngestServer) signedRequest(method, url string) (*http.Request, error) {
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		return nil, err
	}
	sig, err := inngestgo.Sign(context.Background(), time.Now(), []byte("signkey-test-"+s.signingKey), nil)
	if err != nil {
		return nil, fmt.Errorf("sign %s %s: %w", method, url, err)
	}
	req.Header.Set(inngestgo.HeaderKeySignature, sig)
	return req, nil
}

// functions returns the slugs of the functions the server has registered for app.
func (s *inngestServer) functions(app string) ([]string, error) {
	req, _ := http.NewRequest(http.MethodGet, s.url+"/v1/apps/"+app+"/functions", nil)
	req.Header.Set("Authorization", "Bearer signkey-test-"+s.signingKey)
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /v1/apps/%s/functions = %d: %s", app, resp.StatusCode, tail(body, 300))
	}
	var wrapped struct {
		Data json.RawMessage `json:"data"`
	}
	if json.Unmarshal(body, &wrapped) == nil && len(wrapped.Data) > 0 {
		body = wrapped.Data
	}
	var fns []struct {
		Slug   string `json:"id"`
		Config struct {
			Concurrency json.RawMessage `json:"concurrency"`
		} `json:"config"`
	}
	if err := json.Unmarshal(body, &fns); err != nil {
		return nil, err
	}
	slugs := make([]string, len(fns))
	for i, f := range fns {
		slugs[i] = f.Slug
		var limits []struct {
			Limit int    `json:"limit"`
			Key   string `json:"key"`
		}
		if json.Unmarshal(f.Config.Concurrency, &limits) == nil {
			for _, l := range limits {
				slugs[i] += fmt.Sprintf(" [%d per %s]", l.Limit, l.Key)
			}
		}
	}
	return slugs, nil
}
