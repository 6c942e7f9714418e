package main

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"maps"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"clerksync/httpapi"
)

// docker-compose.prod.yml cannot run here (no Docker engine), so these tests check its
// structure: what each service runs and with which settings, where its secrets come from and
// that none is on a command line, which networks join which services, the start order, and
// what the load balancer's configuration lets through to the replicas.

const prodComposePath = "docker-compose.prod.yml"

// prodReplicas are the service replicas the load balancer spreads requests over.
var prodReplicas = []string{"app1", "app2", "app3"}

func TestProdCompose(t *testing.T) {
	raw, err := os.ReadFile(prodComposePath)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range checkProdCompose(raw, os.ReadFile, false) {
		t.Error(p)
	}
}

// TestProdComposeCatchesMistakes breaks docker-compose.prod.yml or a file it mounts in one way
// at a time and expects checkProdCompose to say so: the checks above are only worth what they
// catch.
func TestProdComposeCatchesMistakes(t *testing.T) {
	const (
		lbPath    = "deploy/nginx.conf"
		initPath  = "deploy/mongodb-init-app-user.js"
		mongoPath = "deploy/mongodb-entrypoint.sh"
		redisPath = "deploy/redis-entrypoint.sh"
		redisConf = "deploy/redis.conf"
	)
	originals := map[string][]byte{}
	for _, name := range []string{prodComposePath, lbPath, initPath, mongoPath, redisPath, redisConf} {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		originals[name] = b
	}
	tests := []struct {
		name       string
		file       string // one of originals
		old, new   string // the first occurrence of old becomes new
		wantInProb string // a problem must contain this
	}{
		{"webhook secret hard-coded", prodComposePath,
			"CLERK_WEBHOOK_SIGNING_SECRET: ${CLERK_WEBHOOK_SIGNING_SECRET:?", "CLERK_WEBHOOK_SIGNING_SECRET: whsec_c2VjcmV0c2VjcmV0c2VjcmV0 #",
			"CLERK_WEBHOOK_SIGNING_SECRET"},
		{"event key with a default", prodComposePath,
			"INNGEST_EVENT_KEY: ${INNGEST_EVENT_KEY:?", "INNGEST_EVENT_KEY: ${INNGEST_EVENT_KEY:-evtkey123} #",
			"INNGEST_EVENT_KEY"},
		{"postgres password in the URI", prodComposePath,
			"postgres://inngest:${POSTGRES_PASSWORD:?", "postgres://inngest:hunter2@postgres:5432/inngest#${POSTGRES_PASSWORD:?",
			"password"},
		{"signing key hard-coded on the server", prodComposePath,
			"INNGEST_SIGNING_KEY: ${INNGEST_SIGNING_KEY_HEX:?", "INNGEST_SIGNING_KEY: 0123456789abcdef0123456789abcdef #${INNGEST_SIGNING_KEY_HEX:?",
			"INNGEST_SIGNING_KEY"},
		{"event key on inngest's command line", prodComposePath,
			`command: ["inngest", "start",`, `command: ["inngest", "start", "--event-key", "${INNGEST_EVENT_KEY:?x}",`,
			"command line"},
		{"redis password on redis-server's command line", prodComposePath,
			`command: ["redis-server", "/usr/local/etc/redis/redis.conf"]`, `command: ["redis-server", "/usr/local/etc/redis/redis.conf", "--requirepass", "${REDIS_PASSWORD:?x}"]`,
			"command line"},
		{"mongodb password in its health check", prodComposePath,
			"auth(process.env.MONGO_INITDB_ROOT_USERNAME, process.env.MONGO_INITDB_ROOT_PASSWORD)", "auth('root', '${MONGODB_ROOT_PASSWORD:?x}')",
			"command line"},
		{"dev mode", prodComposePath,
			"    PORT: \"3000\"\n", "    PORT: \"3000\"\n    INNGEST_DEV: \"1\"\n",
			"INNGEST_DEV"},
		{"replica set missing", prodComposePath,
			"?replicaSet=rs0", "?",
			"replicaSet"},
		{"image by tag only", prodComposePath,
			"image: redis:7.4.11-alpine@sha256:", "image: redis:7.4.11-alpine #",
			"digest"},
		{"latest image", prodComposePath,
			"image: redis:7.4.11-alpine@", "image: redis:latest@",
			"version tag"},
		{"health check missing", prodComposePath,
			"test: [\"CMD-SHELL\", \"redis-cli ping | grep -q PONG\"]", "test: [\"NONE\"]",
			"redis has no health check"},
		{"Inngest syncs a single replica", prodComposePath,
			`"-u", "http://lb:8081/api/inngest"`, `"-u", "http://app1:3000/api/inngest"`,
			"load balancer"},
		{"serve URL not where Inngest calls", prodComposePath,
			"INNGEST_SERVE_URL: http://lb:8081/api/inngest", "INNGEST_SERVE_URL: http://app1:3000/api/inngest",
			"INNGEST_SERVE_URL"},
		{"sync token not given to the replicas", prodComposePath,
			"    SYNC_API_TOKEN: ${SYNC_API_TOKEN:-}\n", "",
			"SYNC_API_TOKEN"},
		{"sync token with a default", prodComposePath,
			"SYNC_API_TOKEN: ${SYNC_API_TOKEN:-}", "SYNC_API_TOKEN: ${SYNC_API_TOKEN:-0123456789abcdef0123456789abcdef}",
			"SYNC_API_TOKEN"},
		{"apps do not wait for MongoDB", prodComposePath,
			"    mongodb:\n      condition: service_healthy\n", "",
			"mongodb"},
		{"database published", prodComposePath,
			"    command: [\"mongod\"", "    ports: [\"27017:27017\"]\n    command: [\"mongod\"",
			"mongodb publishes"},
		{"load balancer on MongoDB's network", prodComposePath,
			"      - web\n      - inngest-calls\n", "      - web\n      - inngest-calls\n      - backend\n",
			"lb and mongodb share"},
		{"replica off MongoDB's network", prodComposePath,
			"    - web\n    - backend\n", "    - web\n",
			"share no network"},
		{"postgres on the load balancer's network", prodComposePath,
			"    networks:\n      - inngest-store\n    # Over TCP", "    networks:\n      - inngest-store\n      - web\n    # Over TCP",
			"lb and postgres share"},
		{"a service on the default network", prodComposePath,
			"    networks:\n      - inngest-store\n    healthcheck:", "    healthcheck:",
			"default network"},
		{"database network with a route out", prodComposePath,
			"  backend:\n    internal: true\n", "  backend:\n",
			"internal"},
		{"mongodb without a key file", prodComposePath,
			`"--keyFile", "/run/mongodb/keyfile", `, "",
			"--keyFile"},
		{"mongodb without an administrator", prodComposePath,
			"      MONGO_INITDB_ROOT_USERNAME: root\n", "",
			"MONGO_INITDB_ROOT_USERNAME"},
		{"app user script not mounted", prodComposePath,
			"      - ./deploy/mongodb-init-app-user.js:/docker-entrypoint-initdb.d/mongodb-init-app-user.js:ro\n", "",
			"docker-entrypoint-initdb.d"},
		{"app user may administer", initPath,
			"roles: [{ role: 'readWrite', db: 'app' }]", "roles: [{ role: 'readWrite', db: 'app' }, { role: 'userAdminAnyDatabase', db: 'admin' }]",
			"readWrite"},
		{"app user on every database", initPath,
			"role: 'readWrite', db: 'app'", "role: 'readWriteAnyDatabase', db: 'admin'",
			"readWrite"},
		{"replicas connect without credentials", prodComposePath,
			"mongodb://app:${MONGODB_APP_PASSWORD:?", "mongodb://${MONGODB_APP_PASSWORD:?",
			"MONGODB_URI"},
		{"replicas authenticate in the wrong database", prodComposePath,
			"&authSource=app", "&authSource=admin",
			"authSource"},
		{"key file readable by others", mongoPath,
			"chmod 400 /run/mongodb/keyfile", "chmod 644 /run/mongodb/keyfile",
			"400"},
		{"redis ACL without a password", redisPath,
			`user default on >%s ~* &* +@all\n' "$password"`, `user default on nopass ~* &* +@all\n'`,
			"ACL"},
		{"redis config names no ACL file", redisConf,
			"aclfile /run/redis/users.acl\n", "",
			"aclfile"},
		{"replica missing from the load balancer", lbPath,
			"app3:3000", "app2:3000",
			"app3"},
		{"large bodies on the published port", lbPath,
			"    client_max_body_size 1m;\n", "    client_max_body_size 8m;\n",
			"client_max_body_size"},
		{"webhook not request-limited", lbPath,
			"limit_req zone=webhook burst=200 nodelay;", "",
			"limit_req"},
		{"sync route not request-limited", lbPath,
			"limit_req zone=sync burst=20 nodelay;", "",
			"limit_req"},
		{"limit without its zone", lbPath,
			"limit_req_zone $binary_remote_addr zone=sync:10m rate=5r/s;", "",
			"limit_req_zone"},
		{"sync route not forwarded", lbPath,
			"location ~ ^/api/sync/users/[A-Za-z0-9_]+$ {", "location ~ ^/api/sync/nothing/[A-Za-z0-9_]+$ {",
			"/api/sync/users"},
		{"GET passed to /api/inngest", lbPath,
			"^(POST|PUT)$", "^(GET|POST|PUT)$",
			"GET /api/inngest"},
		{"PUT refused on /api/inngest", lbPath,
			"^(POST|PUT)$", "^(POST)$",
			"PUT /api/inngest"},
		{"methods refused with 403", lbPath,
			"add_header Allow \"POST, PUT\" always;\n            return 405;", "return 403;",
			"405"},
		{"/api/inngest published", lbPath,
			"    location / {\n        return 404;\n    }\n}\n\nserver {\n    listen 8081;",
			"    location = /api/inngest {\n        proxy_pass http://clerk_user_sync;\n    }\n\n    location / {\n        return 404;\n    }\n}\n\nserver {\n    listen 8081;",
			"published port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := maps.Clone(originals)
			if !strings.Contains(string(files[tt.file]), tt.old) {
				t.Fatalf("%s no longer contains %q: update this case", tt.file, tt.old)
			}
			files[tt.file] = []byte(strings.Replace(string(files[tt.file]), tt.old, tt.new, 1))
			read := func(name string) ([]byte, error) {
				if b, ok := files[strings.TrimPrefix(name, "./")]; ok {
					return b, nil
				}
				return os.ReadFile(name)
			}
			probs := checkProdCompose(files[prodComposePath], read, false)
			for _, p := range probs {
				if strings.Contains(p, tt.wantInProb) {
					return
				}
			}
			t.Errorf("no problem mentions %q; got %d:\n%s", tt.wantInProb, len(probs), strings.Join(probs, "\n"))
		})
	}
}

// checkProdCompose returns what is wrong with the production compose file raw; readFile
// reads the files it names (the files it mounts, tools/inngest/go.mod). connect says which
// variant raw is: serve mode (docker-compose.prod.yml), where Inngest calls the replicas
// through the load balancer, or Connect mode (with docker-compose.connect.yml on top), where
// the replicas dial Inngest's Connect gateway.
func checkProdCompose(raw []byte, readFile func(string) ([]byte, error), connect bool) []string {
	var probs []string
	fail := func(format string, args ...any) { probs = append(probs, fmt.Sprintf(format, args...)) }

	var c composeFile
	if err := yaml.Unmarshal(raw, &c); err != nil {
		return []string{fmt.Sprintf("%s is not valid YAML for compose: %v", prodComposePath, err)}
	}
	for _, name := range append([]string{"lb", "mongodb", "inngest", "postgres", "redis"}, prodReplicas...) {
		if _, ok := c.Services[name]; !ok {
			fail("%s has no %q service", prodComposePath, name)
		}
	}
	if len(probs) > 0 {
		return probs
	}

	// Every secret is required from the environment: with none set, interpolation names each
	// missing variable, as compose does when it refuses to start.
	dummies := map[string]string{}
	probs = append(probs, checkProdSecrets(raw, c, dummies)...)
	env := func(svc string) map[string]string {
		m := map[string]string{}
		for k, v := range c.Services[svc].Environment {
			m[k], _ = interpolateEnv(v, dummies)
		}
		return m
	}
	command := func(svc string) []string {
		var args []string
		for _, a := range c.Services[svc].Command {
			v, _ := interpolateEnv(a, dummies)
			args = append(args, v)
		}
		return args
	}
	// mounted returns the repository file that svc mounts at target ("" when none).
	mounted := func(svc, target string) string {
		for _, v := range c.Services[svc].Volumes {
			parts := strings.Split(v, ":")
			if len(parts) >= 2 && parts[1] == target && strings.HasPrefix(parts[0], ".") {
				return parts[0]
			}
		}
		return ""
	}

	// Images pinned by digest, health checks, restart policies, volumes.
	for _, name := range sortedKeys(c.Services) {
		svc := c.Services[name]
		if svc.Build == nil {
			if p := digestProblem(svc.Image); p != "" {
				fail("service %s: %s", name, p)
			}
		}
		if len(svc.Healthcheck.Test) < 2 || (svc.Healthcheck.Test[0] != "CMD" && svc.Healthcheck.Test[0] != "CMD-SHELL") {
			fail("service %s has no health check (healthcheck.test = %q)", name, svc.Healthcheck.Test)
		}
		if svc.Restart != "unless-stopped" && svc.Restart != "always" {
			fail("service %s restart = %q; want unless-stopped or always", name, svc.Restart)
		}
		for _, v := range svc.Volumes {
			src, _, _ := strings.Cut(v, ":")
			if strings.HasPrefix(src, ".") || strings.HasPrefix(src, "/") {
				if _, err := readFile(src); err != nil {
					fail("service %s mounts %s, which is missing: %v", name, src, err)
				}
			} else if _, ok := c.Volumes[src]; !ok {
				fail("service %s mounts volume %q, which is not declared under volumes", name, src)
			}
		}
	}
	for _, name := range []string{"mongodb", "postgres", "redis"} {
		if len(c.Services[name].Volumes) == 0 {
			fail("%s keeps its data in no volume", name)
		}
	}

	// No secret on a command line: every process of the host reads /proc/<pid>/cmdline, and
	// `docker inspect` shows the command, the entrypoint and the health check.
	for _, name := range sortedKeys(c.Services) {
		svc := c.Services[name]
		for _, part := range []struct {
			what string
			args []string
		}{{"command", svc.Command}, {"entrypoint", svc.Entrypoint}, {"health check", svc.Healthcheck.Test}} {
			for _, a := range part.args {
				v, _ := interpolateEnv(a, dummies)
				for _, secret := range sortedKeys(dummies) {
					if strings.Contains(v, dummies[secret]) {
						fail("service %s puts %s on its command line (%s %q): pass it in the environment or a file", name, secret, part.what, a)
					}
				}
				if isSecretFlag(a) || uriPassword.MatchString(a) {
					fail("service %s puts a secret on its command line (%s %q): pass it in the environment or a file", name, part.what, a)
				}
			}
		}
	}

	// Published ports: the load balancer's public port; anything else on loopback only.
	var public []prodPort
	for _, name := range sortedKeys(c.Services) {
		for _, p := range c.Services[name].Ports {
			pp, err := parsePort(p)
			if err != nil {
				fail("service %s port %q: %v", name, p, err)
				continue
			}
			switch {
			case name == "lb" && !pp.loopback():
				public = append(public, pp)
			case !pp.loopback():
				fail("%s publishes %q on every interface; only the load balancer is public (bind others to 127.0.0.1)", name, p)
			}
		}
	}
	if len(public) != 1 {
		fail("lb publishes %d ports on the network; want one public port", len(public))
	}

	probs = append(probs, checkProdNetworks(c, connect)...)

	// Start order.
	for _, tt := range []struct{ svc, dep string }{
		{"inngest", "postgres"}, {"inngest", "redis"},
		{"app1", "mongodb"}, {"app2", "mongodb"}, {"app3", "mongodb"},
		{"app1", "inngest"}, {"app2", "inngest"}, {"app3", "inngest"},
		{"lb", "app1"}, {"lb", "app2"}, {"lb", "app3"},
	} {
		if got := c.Services[tt.svc].DependsOn[tt.dep].Condition; got != "service_healthy" {
			fail("%s depends_on %s condition = %q; want service_healthy (start order)", tt.svc, tt.dep, got)
		}
	}

	// MongoDB: a replica set whose member is named as the apps reach it, with access control.
	replSet := flagValue(command("mongodb"), "--replSet")
	if replSet == "" {
		fail("mongodb command = %q; want mongod --replSet <name>", c.Services["mongodb"].Command)
	}
	mongoCheck := strings.Join(c.Services["mongodb"].Healthcheck.Test, " ")
	if !strings.Contains(mongoCheck, "rs.initiate") {
		fail("mongodb health check = %q; want one that runs rs.initiate() when the replica set has no configuration", mongoCheck)
	}
	appUser := checkMongoAuth(c, env("mongodb"), command("mongodb"), mounted, readFile, &probs)

	// The replicas: the service's own settings reader accepts their environment, in
	// production mode, pointed at the stack's services.
	inngestCmd := command("inngest")
	inngestSetting := func(flag string) string { return prodInngestSetting(inngestCmd, env("inngest"), flag) }
	serverSigningKey := inngestSetting("signing-key")
	sdkURL := inngestSetting("sdk-url")
	if v := flagValue(inngestCmd, "-u"); v != "" {
		sdkURL = v
	}
	first := env(prodReplicas[0])
	// alike is a replica's environment less its Connect worker's id, which differs by design.
	alike := func(envs map[string]string) map[string]string {
		m := maps.Clone(envs)
		delete(m, "INNGEST_INSTANCE_ID")
		return m
	}
	var maxEventBytes int64
	instances := map[string]string{} // Connect worker id -> the replica it names
	for _, name := range prodReplicas {
		svc := c.Services[name]
		envs := env(name)
		if svc.Build == nil {
			fail("%s is not built from the Dockerfile (no build)", name)
		}
		if svc.Image != c.Services[prodReplicas[0]].Image {
			fail("%s image = %q; want the same image as %s", name, svc.Image, prodReplicas[0])
		}
		if !maps.Equal(alike(envs), alike(first)) {
			fail("%s environment differs from %s's: the replicas must be configured alike", name, prodReplicas[0])
		}
		if _, ok := svc.Environment["INNGEST_DEV"]; ok {
			fail("%s sets INNGEST_DEV: dev mode runs unsigned requests to /api/inngest, never in production", name)
		}
		if connect {
			// Connect mode: the replica dials Inngest, as a worker of its own, and registers no URL.
			if v := strings.ToLower(strings.TrimSpace(envs["INNGEST_CONNECT"])); v != "1" && v != "true" && v != "yes" {
				fail("%s INNGEST_CONNECT = %q; want 1 in the Connect variant: the replica must dial Inngest's gateway, as nothing calls its /api/inngest", name, envs["INNGEST_CONNECT"])
			}
			if v := strings.TrimSpace(envs["INNGEST_SERVE_URL"]); v != "" {
				fail("%s INNGEST_SERVE_URL = %q; want it unset or empty in Connect mode: there is no /api/inngest to register (the service refuses both)", name, v)
			}
			// The worker's id: INNGEST_INSTANCE_ID, else the hostname. A container's default
			// hostname is its id, which changes whenever compose recreates it.
			id, from := strings.TrimSpace(envs["INNGEST_INSTANCE_ID"]), "INNGEST_INSTANCE_ID"
			if id == "" {
				id, from = svc.Hostname, "hostname"
			}
			switch other, taken := instances[id]; {
			case id == "":
				fail("%s has no Connect instance id (INNGEST_INSTANCE_ID or hostname): its worker would be named by the container's id, which changes whenever compose recreates it", name)
			case taken:
				fail("%s and %s share the Connect instance id %q (%s): each replica must be a worker of its own", other, name, id, from)
			default:
				instances[id] = name
			}
		}
		cfg, err := readConfig(func(k string) string { return envs[k] })
		if err != nil {
			fail("the environment of %s does not start the service: %v", name, err)
			continue
		}
		maxEventBytes = cfg.webhook.maxEventBytes
		if cfg.inngest.devURL != "" {
			fail("%s runs in dev mode (Inngest dev server %s)", name, cfg.inngest.devURL)
		}
		if cfg.db.embedded {
			fail("%s uses the embedded database; want the shared MongoDB", name)
		}
		mongo, err := url.Parse(cfg.db.mongoURI)
		if err != nil || mongo.Hostname() != "mongodb" || mongo.Port() != "27017" {
			fail("%s MONGODB_URI = %q; want mongodb://mongodb:27017/...", name, envs["MONGODB_URI"])
		} else {
			if got := mongo.Query().Get("replicaSet"); got == "" || got != replSet {
				fail("%s MONGODB_URI = %q; want replicaSet=%s, mongodb's --replSet", name, envs["MONGODB_URI"], replSet)
			}
			if !strings.Contains(mongoCheck, mongo.Host) {
				fail("mongodb's replica set member is not %s, where %s reaches it: the driver connects to the member's name", mongo.Host, name)
			}
			// The credentials of the user mongodb's init script creates (when there is one:
			// its absence is reported above).
			pw, _ := mongo.User.Password()
			authSource := mongo.Query().Get("authSource")
			if authSource == "" {
				authSource = strings.Trim(mongo.Path, "/") // the driver's default: the URI's database
			}
			switch {
			case appUser.name == "":
			case mongo.User.Username() != appUser.name || pw == "" || pw != appUser.password:
				fail("%s MONGODB_URI = %q; want the credentials of the user that mongodb's init script creates (%s, its password variable)", name, mongo.Redacted(), appUser.name)
			case cfg.db.database != appUser.db:
				fail("%s uses database %q; the app user may read and write %q only", name, cfg.db.database, appUser.db)
			case authSource != appUser.db:
				fail("%s MONGODB_URI authSource = %q; the app user is created in %q, where it authenticates", name, authSource, appUser.db)
			}
		}
		base, err := url.Parse(cfg.inngest.baseURL)
		if err != nil || base.Hostname() != "inngest" || base.Port() != prodInngestPort(inngestCmd) {
			fail("%s INNGEST_BASE_URL = %q; want http://inngest:%s, the Inngest service", name, envs["INNGEST_BASE_URL"], prodInngestPort(inngestCmd))
		}
		if got, want := cfg.inngest.eventKey, inngestSetting("event-key"); got == "" || got != want {
			fail("%s INNGEST_EVENT_KEY = %q; want the server's event key %q (the same variable)", name, got, want)
		}
		// The SDK signs with its key less the signkey-<env>- prefix; the server takes that
		// bare hex key.
		if got := sdkKeyPrefix.ReplaceAllString(cfg.inngest.signingKey, ""); !sdkKeyPrefix.MatchString(cfg.inngest.signingKey) || got != serverSigningKey {
			fail("%s INNGEST_SIGNING_KEY = %q; want signkey-<env>-%s, the server's signing key with the SDK's prefix", name, cfg.inngest.signingKey, serverSigningKey)
		}
		// The URL the service registers with Inngest is where Inngest calls it.
		if got := envs["INNGEST_SERVE_URL"]; !connect && (got == "" || got != sdkURL) {
			fail("%s INNGEST_SERVE_URL = %q; want %q, where inngest calls the replicas (its -u)", name, got, sdkURL)
		}
		// The on-demand sync: optional, off unless the operator sets the token.
		if v, ok := svc.Environment["SYNC_API_TOKEN"]; !ok || v != "${SYNC_API_TOKEN:-}" {
			fail("%s SYNC_API_TOKEN = %q (set: %v); want ${SYNC_API_TOKEN:-}: optional, unset keeps POST /api/sync/users/{id} off", name, v, ok)
		}
		if cfg.http.metricsAddr == "" {
			fail("%s serves /metrics on PORT; set METRICS_ADDR to an internal port", name)
		} else if _, port, _ := net.SplitHostPort(cfg.http.metricsAddr); port == cfg.http.port {
			fail("%s METRICS_ADDR = %q shares PORT %s", name, cfg.http.metricsAddr, cfg.http.port)
		}
		if !strings.Contains(strings.Join(svc.Healthcheck.Test, " "), "/clerk-user-sync healthcheck") {
			fail("%s health check = %q; want the binary's healthcheck command", name, svc.Healthcheck.Test)
		}
		if grace, err := time.ParseDuration(svc.StopGracePeriod); err != nil || grace <= cfg.http.shutdownTimeout {
			fail("%s stop_grace_period = %q; want more than SHUTDOWN_TIMEOUT (%s), so that a stop drains requests", name, svc.StopGracePeriod, cfg.http.shutdownTimeout)
		}
		if len(svc.Ports) > 0 {
			fail("%s publishes %q; the replicas are reached through the load balancer only", name, svc.Ports)
		}
	}

	// Inngest: self-hosted on PostgreSQL and Redis, calling the replicas through the load balancer.
	inngest := c.Services["inngest"]
	if pin, err := readFile("tools/inngest/go.mod"); err != nil {
		fail("tools/inngest/go.mod: %v", err)
	} else if m := regexp.MustCompile(`github.com/inngest/inngest (v\S+)`).FindSubmatch(pin); m == nil || strings.Split(inngest.Image, "@")[0] != "inngest/inngest:"+string(m[1]) {
		fail("inngest image %q differs from the server pinned in tools/inngest/go.mod", inngest.Image)
	}
	if len(inngestCmd) < 2 || inngestCmd[0] != "inngest" || inngestCmd[1] != "start" {
		fail("inngest command = %q; want inngest start (the self-hosted server, not the dev server)", inngest.Command)
	}
	if !regexp.MustCompile(`^[0-9a-fA-F]+$`).MatchString(serverSigningKey) || len(serverSigningKey)%2 != 0 {
		fail("inngest's signing key = %q; inngest start takes a hex key of even length", serverSigningKey)
	}
	pgEnv := env("postgres")
	if pg, err := url.Parse(inngestSetting("postgres-uri")); err != nil || pg.Scheme != "postgres" || pg.Hostname() != "postgres" {
		fail("inngest's postgres URI = %q; want postgres://...@postgres:5432/...", inngestSetting("postgres-uri"))
	} else {
		pw, _ := pg.User.Password()
		if pg.Port() != "5432" || pg.User.Username() != pgEnv["POSTGRES_USER"] || pw != pgEnv["POSTGRES_PASSWORD"] || strings.TrimPrefix(pg.Path, "/") != pgEnv["POSTGRES_DB"] {
			fail("inngest's postgres URI = %q; want the postgres service's user, password and database (POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_DB) on port 5432", pg.Redacted())
		}
	}
	if rd, err := url.Parse(inngestSetting("redis-uri")); err != nil || rd.Scheme != "redis" || rd.Hostname() != "redis" || rd.Port() != "6379" {
		fail("inngest's redis URI = %q; want redis://...@redis:6379", inngestSetting("redis-uri"))
	} else {
		pw, _ := rd.User.Password()
		probs = append(probs, checkProdRedis(c, env("redis"), command("redis"), pw, mounted, readFile)...)
	}
	u := &url.URL{}
	if connect {
		// Nothing serves /api/inngest: inngest start would try to sync it every 5 s for ever.
		if sdkURL != "" {
			fail("inngest -u = %q in Connect mode; want none: the functions register when each replica connects, and nothing serves /api/inngest", sdkURL)
		}
		// The gateway: on no port of the host. The replicas reach it on their own network.
		gateway := inngestSetting("connect-gateway-port")
		if gateway == "" {
			gateway = "8289" // inngest start's default
		}
		for _, p := range inngest.Ports {
			if pp, err := parsePort(p); err == nil && pp.target == gateway {
				fail("inngest publishes its Connect gateway (port %s) on the host (%q); only the replicas may reach it, on their network", gateway, p)
			}
		}
		if gateway == prodInngestPort(inngestCmd) {
			fail("inngest's Connect gateway port %s is its API port", gateway)
		}
	} else if su, err := url.Parse(sdkURL); err != nil || su.Hostname() != "lb" || su.Path != "/api/inngest" {
		fail("inngest -u = %q; want http://lb:<port>/api/inngest, through the load balancer to every replica", sdkURL)
	} else {
		u = su
	}

	// The load balancer: its configuration names every replica, and lets through what each
	// port is for, and nothing else.
	appPort := first["PORT"]
	if appPort == "" {
		appPort = "3000" // the service's default
	}
	probs = append(probs, checkLoadBalancer(c, appPort, public, u, maxEventBytes, readFile)...)
	return probs
}

// secretFlags are command-line flags whose value is a secret.
var secretFlags = []string{"--event-key", "--signing-key", "--postgres-uri", "--redis-uri", "--requirepass", "--masterauth", "--password"}

// isSecretFlag reports whether arg is one of secretFlags, alone or as flag=value.
func isSecretFlag(arg string) bool {
	for _, f := range secretFlags {
		if arg == f || strings.HasPrefix(arg, f+"=") {
			return true
		}
	}
	return false
}

// prodInngestSetting returns an `inngest start` setting: its --flag in cmd, else the
// INNGEST_<FLAG> variable of env (dashes as underscores), which v1.12.1 reads as the same
// setting (cmd/internal/config/config.go, loadEnvironmentVariables, in github.com/inngest/inngest).
func prodInngestSetting(cmd []string, env map[string]string, flag string) string {
	if v := flagValue(cmd, "--"+flag); v != "" {
		return v
	}
	return env["INNGEST_"+strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))]
}

// checkProdNetworks checks who can reach whom. The load balancer faces the internet: it shares
// a network with the replicas (to proxy to them) and, in serve mode, with Inngest (which calls
// the replicas through it), and none with a database. The replicas share one with MongoDB and
// Inngest; Inngest one with PostgreSQL and Redis. The databases' networks are internal: no
// route out. A service that publishes a port joins a network that is not internal (Docker
// publishes no port of a container on internal networks only: moby/moby#36174). In Connect
// mode Inngest's gateway listens on every interface of its container (":<port>",
// pkg/connect/service.go in github.com/inngest/inngest v1.12.1), so Inngest shares networks
// with the replicas and its own PostgreSQL and Redis only: not the load balancer, not MongoDB.
func checkProdNetworks(c composeFile, connect bool) []string {
	var probs []string
	fail := func(format string, args ...any) { probs = append(probs, fmt.Sprintf(format, args...)) }
	for _, name := range sortedKeys(c.Services) {
		nets := c.Services[name].Networks
		if len(nets) == 0 {
			fail("service %s is on compose's default network, which every service without networks shares: name its networks", name)
		}
		for _, n := range nets {
			if _, ok := c.Networks[n]; !ok {
				fail("service %s joins network %q, which is not declared under networks", name, n)
			}
		}
	}
	shared := func(a, b string) []string {
		var out []string
		for _, n := range c.Services[a].Networks {
			if slices.Contains(c.Services[b].Networks, n) {
				out = append(out, n)
			}
		}
		return out
	}
	var must, mustNot [][2]string
	for _, r := range prodReplicas {
		must = append(must, [2]string{"lb", r}, [2]string{r, "mongodb"}, [2]string{r, "inngest"})
		mustNot = append(mustNot, [2]string{r, "postgres"}, [2]string{r, "redis"})
	}
	must = append(must, [2]string{"inngest", "postgres"}, [2]string{"inngest", "redis"})
	if !connect {
		must = append(must, [2]string{"lb", "inngest"})
	}
	mustNot = append(mustNot, [2]string{"lb", "mongodb"}, [2]string{"lb", "postgres"}, [2]string{"lb", "redis"},
		[2]string{"mongodb", "postgres"}, [2]string{"mongodb", "redis"})
	for _, p := range must {
		if len(shared(p[0], p[1])) == 0 {
			fail("%s and %s share no network; %s must reach %s", p[0], p[1], p[0], p[1])
		}
	}
	for _, p := range mustNot {
		if s := shared(p[0], p[1]); len(s) > 0 {
			fail("%s and %s share networks %q; keep them apart", p[0], p[1], s)
		}
	}
	for _, db := range []string{"mongodb", "postgres", "redis"} {
		for _, n := range c.Services[db].Networks {
			if nw, ok := c.Networks[n]; ok && (nw == nil || !nw.Internal) {
				fail("network %s (of %s) is not internal: a database needs no route out", n, db)
			}
		}
	}
	for _, name := range sortedKeys(c.Services) {
		svc := c.Services[name]
		if len(svc.Ports) == 0 {
			continue
		}
		if !slices.ContainsFunc(svc.Networks, func(n string) bool { nw := c.Networks[n]; return nw == nil || !nw.Internal }) {
			fail("%s publishes %q but all its networks (%q) are internal: Docker publishes no port of such a container", name, svc.Ports, svc.Networks)
		}
	}
	if connect {
		reach := append([]string{"inngest", "postgres", "redis"}, prodReplicas...)
		for _, name := range sortedKeys(c.Services) {
			if s := shared(name, "inngest"); !slices.Contains(reach, name) && len(s) > 0 {
				fail("%s shares networks %q with inngest, whose Connect gateway listens on every network it joins: only the replicas (and Inngest's PostgreSQL and Redis) may reach it", name, s)
			}
		}
	}
	return probs
}

// mongoUser is the user mongodb's init script creates for the service.
type mongoUser struct{ name, db, password string }

var (
	// createUserCall matches db.getSiblingDB('<db>').createUser({ user: '<name>', ... }).
	createUserCall = regexp.MustCompile(`getSiblingDB\(\s*['"](\w+)['"]\s*\)\s*\.createUser\(\s*\{\s*user:\s*['"](\w+)['"]`)
	// userPassword matches `pwd: <variable>` and `const <variable> = process.env.<NAME>`.
	userPassword  = regexp.MustCompile(`pwd:\s*(\w+)`)
	envAssignment = regexp.MustCompile(`(\w+)\s*=\s*process\.env\.(\w+)`)
	// userRole matches one { role: '<role>', db: '<db>' } of roles.
	userRole = regexp.MustCompile(`\{\s*role:\s*['"](\w+)['"]\s*,\s*db:\s*['"](\w+)['"]\s*\}`)
)

// checkMongoAuth checks MongoDB's access control: a key file (mongod then authenticates every
// client), written readable by mongod's user only; an administrator from the environment; and
// an init script, run by the image on an empty volume, that creates the service's user with
// readWrite on one database and nothing else. It appends the problems to probs and returns
// that user, its password as env holds it.
func checkMongoAuth(c composeFile, env map[string]string, cmd []string, mounted func(svc, target string) string, readFile func(string) ([]byte, error), probs *[]string) mongoUser {
	fail := func(format string, args ...any) { *probs = append(*probs, fmt.Sprintf(format, args...)) }
	var user mongoUser
	keyFile := flagValue(cmd, "--keyFile")
	if keyFile == "" {
		fail("mongodb command = %q; want --keyFile <file>: without it MongoDB lets anyone on its network in", cmd)
	} else {
		// The key file is written at start from the environment, by the entrypoint.
		ep := c.Services["mongodb"].Entrypoint
		script := ""
		if len(ep) > 0 {
			script = mounted("mongodb", ep[len(ep)-1])
		}
		body, err := readFile(script)
		switch {
		case script == "" || err != nil:
			fail("mongodb entrypoint %q is no script the compose file mounts (want one that writes %s from the environment): %v", ep, keyFile, err)
		case !strings.Contains(string(body), keyFile) || !strings.Contains(string(body), "chmod 400 "+keyFile) || !strings.Contains(string(body), "chown") || !strings.Contains(string(body), "docker-entrypoint.sh"):
			fail("%s must write %s, chown it to mongod's user and chmod 400 it (mongod refuses a key file others can read), then exec docker-entrypoint.sh", script, keyFile)
		}
	}
	if env["MONGO_INITDB_ROOT_USERNAME"] == "" || env["MONGO_INITDB_ROOT_PASSWORD"] == "" {
		fail("mongodb MONGO_INITDB_ROOT_USERNAME and MONGO_INITDB_ROOT_PASSWORD must both be set: the image creates the administrator from them")
	}
	if check := strings.Join(c.Services["mongodb"].Healthcheck.Test, " "); !strings.Contains(check, ".auth(") {
		fail("mongodb health check = %q; with access control on it must authenticate (db.auth with the administrator from the environment) to run rs.initiate()", check)
	}
	var script string
	for _, v := range c.Services["mongodb"].Volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 && strings.HasPrefix(parts[1], "/docker-entrypoint-initdb.d/") && strings.HasSuffix(parts[1], ".js") {
			script = parts[0]
		}
	}
	if script == "" {
		fail("mongodb mounts no .js script under /docker-entrypoint-initdb.d/: nothing creates the service's user")
		return user
	}
	body, err := readFile(script)
	if err != nil {
		fail("mongodb's init script %s: %v", script, err)
		return user
	}
	calls := createUserCall.FindAllStringSubmatch(string(body), -1)
	if len(calls) != 1 {
		fail("%s makes %d createUser calls; want one, db.getSiblingDB('<db>').createUser({user: '<name>', ...})", script, len(calls))
		return user
	}
	user.db, user.name = calls[0][1], calls[0][2]
	roles := userRole.FindAllStringSubmatch(string(body), -1)
	if len(roles) != 1 || roles[0][1] != "readWrite" || roles[0][2] != user.db || strings.Count(string(body), "role:") != 1 {
		fail("%s gives %s the roles %q; want readWrite on %s only", script, user.name, roles, user.db)
	}
	if m := userPassword.FindStringSubmatch(string(body)); m != nil {
		for _, a := range envAssignment.FindAllStringSubmatch(string(body), -1) {
			if a[1] == m[1] {
				user.password = env[a[2]]
			}
		}
	}
	if user.password == "" {
		fail("%s: the password of %s comes from no variable of mongodb's environment (pwd: <name>, <name> = process.env.<VAR>)", script, user.name)
	}
	return user
}

// checkProdRedis checks that Redis requires a password (the one in Inngest's redis URI) without
// it being on a command line: redis-server reads a mounted configuration file naming an ACL
// file, which the entrypoint writes from the environment, and the health check
// authenticates through REDISCLI_AUTH.
func checkProdRedis(c composeFile, env map[string]string, cmd []string, password string, mounted func(svc, target string) string, readFile func(string) ([]byte, error)) []string {
	var probs []string
	fail := func(format string, args ...any) { probs = append(probs, fmt.Sprintf(format, args...)) }
	if password == "" {
		return []string{"inngest's redis URI has no password: Redis must require one"}
	}
	if env["REDISCLI_AUTH"] != password {
		fail("redis REDISCLI_AUTH is not the password in inngest's redis URI: the health check would not authenticate")
	}
	var passwordVar string
	for _, k := range sortedKeys(env) {
		if env[k] == password && k != "REDISCLI_AUTH" {
			passwordVar = k
		}
	}
	if passwordVar == "" {
		return append(probs, "redis has no variable holding the password in inngest's redis URI")
	}
	if len(cmd) < 2 || cmd[0] != "redis-server" {
		return append(probs, fmt.Sprintf("redis command = %q; want redis-server <config file>", cmd))
	}
	conf, err := readFile(mounted("redis", cmd[1]))
	if err != nil {
		return append(probs, fmt.Sprintf("redis-server reads %s, which the compose file does not mount from the repository: %v", cmd[1], err))
	}
	m := regexp.MustCompile(`(?m)^\s*aclfile\s+(\S+)`).FindStringSubmatch(string(conf))
	if m == nil {
		return append(probs, fmt.Sprintf("redis's configuration (%s) names no aclfile: where is the password?", cmd[1]))
	}
	aclFile := m[1]
	ep := c.Services["redis"].Entrypoint
	script := ""
	if len(ep) > 0 {
		script = mounted("redis", ep[len(ep)-1])
	}
	body, err := readFile(script)
	if script == "" || err != nil {
		return append(probs, fmt.Sprintf("redis entrypoint %q is no script the compose file mounts (want one that writes %s from %s): %v", ep, aclFile, passwordVar, err))
	}
	s := string(body)
	if !strings.Contains(s, aclFile) || !strings.Contains(s, passwordVar) || !strings.Contains(s, "user default on >") ||
		strings.Contains(s, "nopass") || !strings.Contains(s, "docker-entrypoint.sh") {
		fail("%s must write the ACL %s with `user default on >` and %s (never nopass: an ACL file without the default user leaves it open), then exec docker-entrypoint.sh", script, aclFile, passwordVar)
	}
	return probs
}

// sdkKeyPrefix is the prefix the Inngest SDK strips from a signing key before signing
// (inngestgo's signature.go).
var sdkKeyPrefix = regexp.MustCompile(`^signkey-\w+-`)

// checkProdSecrets checks that every secret comes from the environment, filling dummies
// with a distinct value for each variable the file requires. It returns the problems.
func checkProdSecrets(raw []byte, c composeFile, dummies map[string]string) []string {
	var probs []string
	fail := func(format string, args ...any) { probs = append(probs, fmt.Sprintf(format, args...)) }

	// Compose refuses to start without these: interpolating with nothing set must name them.
	required, literal := map[string]bool{}, map[string]bool{}
	var walk func(n any)
	walk = func(n any) {
		switch v := n.(type) {
		case map[string]any:
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		case string:
			_, missing := interpolateEnv(v, nil)
			for _, m := range missing {
				required[m] = true
			}
			for _, re := range literalSecrets {
				if s := re.FindString(v); s != "" && !literal[s] {
					literal[s] = true
					fail("%s holds a literal secret %q; take it from the environment with ${VAR:?message}", prodComposePath, s)
				}
			}
		}
	}
	var doc any
	if err := yaml.Unmarshal(raw, &doc); err == nil {
		walk(doc)
	}
	for name := range required {
		sum := sha256.Sum256([]byte(name))
		dummies[name] = hex.EncodeToString(sum[:16]) // hex, as inngest start wants its key
		if strings.HasSuffix(name, "_SIGNING_SECRET") {
			dummies[name] = "whsec_" + base64.StdEncoding.EncodeToString(sum[:24])
		}
	}

	// Where the secrets go: each must be nothing but a required variable (the SDK's signing
	// key may carry its signkey-<env>- prefix before it).
	requiredRef := func(where, value string) {
		rest := envRef.ReplaceAllStringFunc(value, func(m string) string {
			if strings.Contains(m, ":?") {
				return ""
			}
			return m
		})
		if !envRef.MatchString(value) || sdkKeyPrefix.ReplaceAllString(rest, "") != "" {
			fail("%s = %q; want ${VAR:?message}, so that the secret comes from the environment and compose refuses to start without it", where, value)
		}
	}
	for _, tt := range []struct{ svc, key string }{
		{"postgres", "POSTGRES_PASSWORD"},
		{"inngest", "INNGEST_EVENT_KEY"}, {"inngest", "INNGEST_SIGNING_KEY"},
		{"redis", "REDIS_PASSWORD"}, {"redis", "REDISCLI_AUTH"},
		{"mongodb", "MONGO_INITDB_ROOT_PASSWORD"}, {"mongodb", "MONGODB_APP_PASSWORD"}, {"mongodb", "MONGODB_REPLICA_KEY"},
	} {
		requiredRef(tt.svc+" "+tt.key, c.Services[tt.svc].Environment[tt.key])
	}
	appSecrets := []string{"CLERK_WEBHOOK_SIGNING_SECRET", "INNGEST_EVENT_KEY", "INNGEST_SIGNING_KEY"}
	for _, name := range prodReplicas {
		for _, key := range appSecrets {
			requiredRef(name+" "+key, c.Services[name].Environment[key])
		}
	}
	// Any other setting named like a secret (CLERK_SECRET_KEY, optional): from the
	// environment too, with no default.
	for _, name := range sortedKeys(c.Services) {
		env := c.Services[name].Environment
		for _, key := range sortedKeys(env) {
			if !secretName.MatchString(key) || (slices.Contains(prodReplicas, name) && slices.Contains(appSecrets, key)) {
				continue
			}
			v := env[key]
			if !envRef.MatchString(v) {
				fail("%s %s = %q; want it from the environment (${VAR:?message}, or ${VAR:-} when optional)", name, key, v)
			}
			for _, m := range envRef.FindAllStringSubmatch(v, -1) {
				if m[3] != "" && !strings.HasSuffix(m[2], "?") {
					fail("%s %s = %q has a default secret; leave the default empty", name, key, v)
				}
			}
		}
	}
	// Passwords inside connection strings.
	for _, name := range sortedKeys(c.Services) {
		svc := c.Services[name]
		for _, s := range append(slices.Clone(svc.Command), mapValues(svc.Environment)...) {
			for _, m := range uriPassword.FindAllStringSubmatch(s, -1) {
				requiredRef(name+" connection string password", m[1])
			}
		}
	}
	return probs
}

var (
	// envRef matches compose's ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?msg}, ${VAR?msg}.
	envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}`)
	// secretName matches the names of settings that hold secrets.
	secretName = regexp.MustCompile(`(?i)secret|password|passwd|token|_key$|_key_|auth`)
	// uriPassword matches the password of a connection string: scheme://user:password@.
	uriPassword = regexp.MustCompile(`[a-z+]+://[^:@/\s]*:(\$\{[^}]*\}|[^@/\s]*)@`)
	// literalSecrets are secrets whose shape gives them away.
	literalSecrets = []*regexp.Regexp{
		regexp.MustCompile(`whsec_[A-Za-z0-9+/=]{8,}`),
		regexp.MustCompile(`sk_(live|test)_[A-Za-z0-9]{8,}`),
		regexp.MustCompile(`signkey-\w+-[0-9a-fA-F]{8,}`),
	}
)

// interpolateEnv resolves compose's variables in s from env ($$ is a literal $), as compose
// does, and returns the names of the required variables (${VAR:?msg}, ${VAR?msg}) that env
// lacks.
func interpolateEnv(s string, env map[string]string) (string, []string) {
	var missing []string
	re := regexp.MustCompile(`\$\$|` + envRef.String() + `|\$([A-Za-z_][A-Za-z0-9_]*)`)
	out := re.ReplaceAllStringFunc(s, func(m string) string {
		if m == "$$" {
			return "$"
		}
		sm := re.FindStringSubmatch(m)
		name, op, arg := sm[1], sm[2], sm[3]
		if name == "" {
			name = sm[4]
		}
		v, set := env[name]
		switch op {
		case ":-":
			if v == "" {
				return arg
			}
		case "-":
			if !set {
				return arg
			}
		case ":?", "?":
			if v == "" && (op == ":?" || !set) {
				missing = append(missing, name)
			}
		}
		return v
	})
	return out, missing
}

// flagValue returns the value after flag in args (or in flag=value), "" when absent.
func flagValue(args []string, flag string) string {
	for i, a := range args {
		if a == flag && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, flag+"="); ok {
			return v
		}
	}
	return ""
}

// prodInngestPort is the port inngest start listens on: --port, 8288 by default.
func prodInngestPort(cmd []string) string {
	for _, f := range []string{"--port", "-p"} {
		if p := flagValue(cmd, f); p != "" {
			return p
		}
	}
	return "8288"
}

// prodPort is one entry of a service's ports (short syntax).
type prodPort struct{ hostIP, published, target string }

func (p prodPort) loopback() bool {
	ip := net.ParseIP(strings.Trim(p.hostIP, "[]"))
	return ip != nil && ip.IsLoopback()
}

// parsePort reads compose's short port syntax: [[host_ip:]published:]target[/protocol].
func parsePort(s string) (prodPort, error) {
	s, _, _ = strings.Cut(s, "/")
	i := strings.LastIndex(s, ":")
	if i < 0 {
		return prodPort{target: s}, nil
	}
	p := prodPort{target: s[i+1:]}
	rest := s[:i]
	if j := strings.LastIndex(rest, ":"); j >= 0 {
		p.hostIP, p.published = rest[:j], rest[j+1:]
	} else {
		p.published = rest
	}
	if p.target == "" || p.published == "" {
		return p, fmt.Errorf("not [[host_ip:]published:]target")
	}
	return p, nil
}

// checkLoadBalancer checks lb's configuration file (nginx): an upstream with every replica at
// its PORT. On the published port: POST /api/webhooks/clerk and POST /api/sync/users/<id>
// proxied to it, request-limited, other methods answered 405, bodies limited to 1 MiB but
// no less than the webhook's own limit (maxEventBytes), and no other route of the replicas.
// On the port Inngest's -u names (sdk): /api/inngest with POST and PUT only (405 otherwise),
// bodies above the service's own limit.
func checkLoadBalancer(c composeFile, appPort string, public []prodPort, sdk *url.URL, maxEventBytes int64, readFile func(string) ([]byte, error)) []string {
	var probs []string
	fail := func(format string, args ...any) { probs = append(probs, fmt.Sprintf(format, args...)) }
	lb := c.Services["lb"]
	if !strings.HasPrefix(lb.Image, "nginx:") {
		return []string{fmt.Sprintf("lb image = %q; this test reads nginx configuration only", lb.Image)}
	}
	var confPath string
	for _, v := range lb.Volumes {
		src, dst, _ := strings.Cut(v, ":")
		if strings.HasPrefix(dst, "/etc/nginx/") {
			confPath = src
		}
	}
	if confPath == "" {
		return []string{"lb mounts no configuration file under /etc/nginx/"}
	}
	raw, err := readFile(confPath)
	if err != nil {
		return []string{fmt.Sprintf("the load balancer's configuration %s: %v", confPath, err)}
	}
	conf, err := parseNginx(string(raw))
	if err != nil {
		return []string{fmt.Sprintf("%s: %v", confPath, err)}
	}

	// Upstreams with exactly the replicas.
	upstreams := map[string][]string{}
	for _, d := range conf.all("upstream") {
		if len(d.args) != 1 {
			continue
		}
		var servers []string
		for _, s := range d.block.all("server") {
			if len(s.args) > 0 {
				servers = append(servers, s.args[0])
			}
		}
		sort.Strings(servers)
		upstreams[d.args[0]] = servers
	}
	var want []string
	for _, r := range prodReplicas {
		want = append(want, r+":"+appPort)
	}
	for name, servers := range upstreams {
		for _, w := range want {
			if !slices.Contains(servers, w) {
				fail("%s upstream %s does not name replica %s (servers %q)", confPath, name, w, servers)
			}
		}
	}

	// route is conf.route, checking that what nginx proxies goes to the replicas.
	route := func(port, method, path string) (srv, loc nginxBlock, status int) {
		srv, loc, status, pass := conf.route(port, method, path)
		if _, ok := upstreams[strings.TrimPrefix(pass, "http://")]; status == 0 && !ok {
			fail("%s: %s %s on port %s proxies to %s, not to an upstream of the replicas", confPath, method, path, port, pass)
		}
		return srv, loc, status
	}
	answer := func(status int) string {
		if status == 0 {
			return "proxied to the replicas"
		}
		return strconv.Itoa(status)
	}
	methods := []string{"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"}
	// onlyMethods checks that path on port goes to the replicas with the allowed methods,
	// and is answered 405 with any other (with 404 the client would think the route gone).
	onlyMethods := func(port, path, who string, allowed ...string) (srv, loc nginxBlock) {
		for _, m := range methods {
			s, l, status := route(port, m, path)
			if slices.Contains(allowed, m) {
				srv, loc = s, l
				if status != 0 {
					fail("%s: %s %s on port %s = %s; want it proxied to the replicas (%s)", confPath, m, path, port, answer(status), who)
				}
			} else if status != 405 {
				fail("%s: %s %s on port %s = %s; want 405: only %s reach the replicas there (limit_except, or if ($request_method ...) { return 405; })", confPath, m, path, port, answer(status), strings.Join(allowed, " and "))
			}
		}
		return srv, loc
	}
	limited := func(srv, loc nginxBlock, port, path string) {
		if srv == nil || loc == nil {
			return
		}
		zone, err := requestLimit(conf, srv, loc)
		switch {
		case err != nil:
			fail("%s: %s on port %s: %v", confPath, path, port, err)
		case zone == "":
			fail("%s: %s on port %s has no limit_req: the internet can send it any number of requests", confPath, path, port)
		}
	}

	if len(public) == 1 {
		port := public[0].target
		srv, loc := onlyMethods(port, "/api/webhooks/clerk", "Clerk's webhooks", "POST")
		limited(srv, loc, port, "/api/webhooks/clerk")
		if srv != nil && loc != nil {
			if n := bodyLimit(conf, srv, loc); n < maxEventBytes || n > 1<<20 {
				fail("%s: client_max_body_size of /api/webhooks/clerk on the published port = %d bytes; want from the webhook's own limit (INNGEST_MAX_EVENT_BYTES, %d, so that the service answers too-large ones with the 413 that stops Svix) to 1 MiB", confPath, n, maxEventBytes)
			}
		}
		const syncPath = "/api/sync/users/user_2NNEqL2nrIRdJ194ndJqAHwEfxC"
		srv, loc = onlyMethods(port, syncPath, "the on-demand sync, /api/sync/users/<id>", "POST")
		limited(srv, loc, port, syncPath)
		if srv != nil && loc != nil {
			if n := bodyLimit(conf, srv, loc); n > 1<<20 {
				fail("%s: client_max_body_size of /api/sync/users/<id> on the published port = %d bytes; want at most 1 MiB (it takes no body)", confPath, n)
			}
		}
		// Nothing else of the replicas on the published port.
		for _, path := range []string{"/", "/healthz", "/readyz", "/metrics", "/api/inngest", "/api/sync/users/", "/api/sync/users/user_1/x", "/api/webhooks/clerk/x"} {
			for _, m := range []string{"GET", "POST", "PUT"} {
				if _, _, status := route(port, m, path); status == 0 {
					fail("%s: %s %s is proxied to the replicas on the published port; only the webhook and the sync route belong there", confPath, m, path)
				}
			}
		}
	}
	if sdk.Host != "" {
		port := sdk.Port()
		if port == "" {
			port = "80"
		}
		srv, loc := onlyMethods(port, "/api/inngest", "Inngest (-u "+sdk.String()+"), which runs steps with POST and syncs with PUT", "POST", "PUT")
		if srv != nil && loc != nil {
			if n := bodyLimit(conf, srv, loc); n < httpapi.MaxInngestBodyBytes {
				fail("%s: client_max_body_size of /api/inngest on port %s = %d bytes; want at least the service's own limit (%d), so that the service answers too-large requests", confPath, port, n, httpapi.MaxInngestBodyBytes)
			}
		}
	}
	// The load balancer's own health check must reach a port it listens on.
	check := strings.Join(lb.Healthcheck.Test, " ")
	if m := regexp.MustCompile(`127\.0\.0\.1:(\d+)`).FindStringSubmatch(check); m == nil || !conf.listensAnywhere(m[1]) {
		fail("lb health check %q does not reach a port %s listens on", check, confPath)
	}
	return probs
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

func mapValues(m map[string]string) []string {
	var out []string
	for _, k := range sortedKeys(m) {
		out = append(out, m[k])
	}
	return out
}
