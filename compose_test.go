package main

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// No Docker engine runs where the tests run, so these tests check what can be checked of the
// container files without one: pinned images, the settings the service requires, and ports
// that agree with each other and with the service's defaults.

type composeFile struct {
	Services map[string]struct {
		Image       string            `yaml:"image"`
		Build       any               `yaml:"build"`
		Entrypoint  []string          `yaml:"entrypoint"`
		Command     []string          `yaml:"command"`
		Ports       []string          `yaml:"ports"`
		Environment map[string]string `yaml:"environment"`
		DependsOn   map[string]struct {
			Condition string `yaml:"condition"`
		} `yaml:"depends_on"`
		Healthcheck struct {
			Test []string `yaml:"test"`
		} `yaml:"healthcheck"`
		Volumes         []string        `yaml:"volumes"`
		Networks        composeNetworks `yaml:"networks"`
		Restart         string          `yaml:"restart"`
		StopGracePeriod string          `yaml:"stop_grace_period"`
		Hostname        string          `yaml:"hostname"`
	} `yaml:"services"`
	Volumes  map[string]any `yaml:"volumes"`
	Networks map[string]*struct {
		Internal bool `yaml:"internal"`
	} `yaml:"networks"`
}

// composeNetworks are the networks a service joins: compose takes a list of names or a map
// keyed by name. Empty means compose's default network.
type composeNetworks []string

// UnmarshalYAML reads either form; it returns an error for anything else.
func (n *composeNetworks) UnmarshalYAML(v *yaml.Node) error {
	switch v.Kind {
	case yaml.SequenceNode:
		var names []string
		if err := v.Decode(&names); err != nil {
			return err
		}
		*n = names
	case yaml.MappingNode:
		for i := 0; i+1 < len(v.Content); i += 2 {
			*n = append(*n, v.Content[i].Value)
		}
	default:
		return fmt.Errorf("networks: want a list or a map of names, not %s", v.Tag)
	}
	return nil
}

// interpolate resolves compose's ${VAR:-default} and ${VAR:?message} the way compose does
// when VAR is unset.
func interpolate(s string) string {
	re := regexp.MustCompile(`\$\{[A-Z_]+:?[-?]([^}]*)\}`)
	return re.ReplaceAllStringFunc(s, func(m string) string {
		if strings.Contains(m, ":?") {
			return ""
		}
		return re.FindStringSubmatch(m)[1]
	})
}

// undigestedImages are the images pinned by tag only, each with the reason. A digest nobody
// could check against a real record of the tag is worse than none; every other image is pinned
// by digest, taken from docker-library/repo-info's record of its tag.
var undigestedImages = map[string]string{
	"inngest/inngest":                   "not a Docker official image: no record of its digests to take one from",
	"gcr.io/distroless/static-debian12": "Google rebuilds the moving nonroot tag with Debian's fixes; no record of its digests to take one from",
}

// digestProblem returns what is wrong with how image is pinned: "" when it names a tag and
// its sha256 digest (name:tag@sha256:<64 hex>), or a tag only for one of undigestedImages.
func digestProblem(image string) string {
	ref, digest, hasDigest := strings.Cut(image, "@")
	name, tag := ref, ""
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		name, tag = ref[:i], ref[i+1:]
	}
	if _, ok := undigestedImages[name]; ok && !hasDigest && tag != "" && tag != "latest" {
		return ""
	}
	if !pinnedImage(ref) {
		return fmt.Sprintf("image %q names no version tag (name:tag@sha256:..., the tag for whoever reads it)", image)
	}
	if !hasDigest {
		return fmt.Sprintf("image %q is pinned by tag only; pin it by digest too (name:tag@sha256:...), from a real record of the tag", image)
	}
	if !regexp.MustCompile(`^sha256:[0-9a-f]{64}$`).MatchString(digest) {
		return fmt.Sprintf("image %q: %q is not a sha256 digest", image, digest)
	}
	return ""
}

// pinnedImage reports whether image names an exact tag (not latest) or a digest.
func pinnedImage(image string) bool {
	if strings.Contains(image, "@sha256:") {
		return true
	}
	i := strings.LastIndex(image, ":")
	if i < 0 || strings.Contains(image[i:], "/") {
		return false
	}
	tag := image[i+1:]
	return tag != "" && tag != "latest" && regexp.MustCompile(`\d`).MatchString(tag)
}

func TestDockerCompose(t *testing.T) {
	raw, err := os.ReadFile("docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	if err := yaml.Unmarshal(raw, &c); err != nil {
		t.Fatalf("docker-compose.yml is not valid YAML for compose: %v", err)
	}
	for _, name := range []string{"mongodb", "inngest", "app"} {
		if _, ok := c.Services[name]; !ok {
			t.Fatalf("docker-compose.yml has no %q service", name)
		}
	}
	for name, svc := range c.Services {
		if svc.Build != nil {
			continue // built from this repository's Dockerfile
		}
		if p := digestProblem(svc.Image); p != "" {
			t.Errorf("service %s: %s", name, p)
		}
		if len(svc.Healthcheck.Test) == 0 {
			t.Errorf("service %s has no health check", name)
		}
	}

	app := c.Services["app"]
	envs := map[string]string{}
	for k, v := range app.Environment {
		envs[k] = interpolate(v)
	}
	if _, err := readConfig(func(k string) string { return envs[k] }); err != nil {
		t.Errorf("the app's environment in docker-compose.yml does not start the service: %v", err)
	}
	if envs["CLERK_WEBHOOK_SIGNING_SECRET"] == "" {
		t.Errorf("app: CLERK_WEBHOOK_SIGNING_SECRET is not set")
	}
	port := envs["PORT"]
	if port == "" {
		port = "3000"
	}
	if port != "3000" {
		t.Errorf("app PORT = %s; want the service's default 3000", port)
	}
	// Dev mode runs unsigned requests to /api/inngest: publish on the host's loopback only.
	if len(app.Ports) != 1 || app.Ports[0] != "127.0.0.1:"+port+":"+port {
		t.Errorf("app ports = %v; want 127.0.0.1:%s:%s (loopback only: dev mode is unauthenticated)", app.Ports, port, port)
	}
	if envs["HOST"] != "0.0.0.0" {
		t.Errorf("app HOST = %q; want 0.0.0.0, so that the dev server's container reaches it (dev mode listens on loopback otherwise)", envs["HOST"])
	}
	if len(app.Healthcheck.Test) == 0 || !strings.Contains(strings.Join(app.Healthcheck.Test, " "), "healthcheck") {
		t.Errorf("app health check = %v; want the binary's healthcheck command", app.Healthcheck.Test)
	}
	if app.DependsOn["mongodb"].Condition != "service_healthy" {
		t.Errorf("app does not wait for a healthy mongodb: %+v", app.DependsOn)
	}

	mongo, err := url.Parse(envs["MONGODB_URI"])
	if err != nil || mongo.Hostname() != "mongodb" || mongo.Port() != "27017" {
		t.Errorf("app MONGODB_URI = %q; want mongodb://mongodb:27017/<db>", envs["MONGODB_URI"])
	}
	if len(c.Services["mongodb"].Volumes) == 0 || len(c.Volumes) == 0 {
		t.Errorf("mongodb has no named volume for its data")
	}

	inngest := c.Services["inngest"]
	dev, err := url.Parse(envs["INNGEST_DEV"])
	if err != nil || dev.Hostname() != "inngest" || dev.Port() != "8288" {
		t.Errorf("app INNGEST_DEV = %q; want http://inngest:8288", envs["INNGEST_DEV"])
	}
	if len(inngest.Ports) != 1 || inngest.Ports[0] != "127.0.0.1:8288:8288" {
		t.Errorf("inngest ports = %v; want 127.0.0.1:8288:8288 (loopback only)", inngest.Ports)
	}
	cmd := strings.Join(inngest.Command, " ")
	if !strings.Contains(cmd, "dev -u http://app:"+port+"/api/inngest") || !strings.Contains(cmd, "--no-discovery") {
		t.Errorf("inngest command = %q; want inngest dev -u http://app:%s/api/inngest --no-discovery", cmd, port)
	}
	if tag := strings.TrimPrefix(inngest.Image, "inngest/inngest:"); !strings.Contains(devServerPin(t), strings.TrimPrefix(tag, "v")) {
		t.Errorf("inngest image %s differs from the dev server pinned in tools/inngest/go.mod", inngest.Image)
	}
	if inngest.DependsOn["app"].Condition == "" {
		t.Errorf("inngest does not start after the app")
	}
}

// devServerPin returns the github.com/inngest/inngest version in tools/inngest/go.mod.
func devServerPin(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile("tools/inngest/go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`github.com/inngest/inngest (v\S+)`).FindSubmatch(raw)
	if m == nil {
		t.Fatal("tools/inngest/go.mod does not require github.com/inngest/inngest")
	}
	return string(m[1])
}

func TestDockerfile(t *testing.T) {
	raw, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var froms []string
	user, volume, dataDir := "", "", ""
	for _, line := range strings.Split(string(raw), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && strings.EqualFold(f[0], "FROM") {
			froms = append(froms, f[1])
			user, volume, dataDir = "", "", ""
		}
		if len(f) >= 2 && strings.EqualFold(f[0], "USER") {
			user = f[1]
		}
		if len(f) >= 2 && strings.EqualFold(f[0], "VOLUME") {
			volume = strings.Trim(strings.Join(f[1:], " "), `[]" `)
		}
		if len(f) >= 2 && strings.EqualFold(f[0], "ENV") {
			for _, kv := range f[1:] {
				if v, ok := strings.CutPrefix(kv, "DATA_DIR="); ok {
					dataDir = v
				}
			}
		}
	}
	// The embedded database (MONGODB_URI=embedded) keeps its data in DATA_DIR: a volume, so
	// that it outlives the container.
	if dataDir == "" || volume != dataDir {
		t.Errorf("the final stage's VOLUME = %q, DATA_DIR = %q; want DATA_DIR declared as the volume", volume, dataDir)
	}
	if len(froms) < 2 {
		t.Fatalf("Dockerfile has %d stages; want a multi-stage build", len(froms))
	}
	for _, img := range froms {
		if p := digestProblem(img); p != "" {
			t.Errorf("Dockerfile base %s", p)
		}
	}
	if user == "" || user == "root" || strings.HasPrefix(user, "0") {
		t.Errorf("the final stage runs as %q; want a non-root user", user)
	}
	if !strings.Contains(string(raw), "CGO_ENABLED=0") {
		t.Errorf("the binary is not built static (CGO_ENABLED=0)")
	}
}

func TestInngestJSON(t *testing.T) {
	raw, err := os.ReadFile("inngest.json")
	if err != nil {
		t.Fatal(err)
	}
	// The keys the v1.12.1 dev server reads from --config (cmd/internal/config: koanf tags).
	var cfg struct {
		SDKURL      []string `json:"sdk-url"`
		NoDiscovery *bool    `json:"no-discovery"`
		Port        string   `json:"port"`
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	if err := dec.Decode(&cfg); err != nil {
		t.Fatalf("inngest.json: %v", err)
	}
	if len(cfg.SDKURL) != 1 {
		t.Fatalf("inngest.json sdk-url = %v; want the app's one serve URL", cfg.SDKURL)
	}
	u, err := url.Parse(cfg.SDKURL[0])
	if err != nil || u.Port() != "3000" || u.Path != "/api/inngest" {
		t.Errorf("inngest.json sdk-url = %q; want the service's default http://127.0.0.1:3000/api/inngest", cfg.SDKURL[0])
	}
	if cfg.NoDiscovery == nil || !*cfg.NoDiscovery {
		t.Errorf("inngest.json no-discovery = %v; want true", cfg.NoDiscovery)
	}
	if cfg.Port != "8288" {
		t.Errorf("inngest.json port = %q; want 8288, where INNGEST_DEV=1 looks", cfg.Port)
	}
	// TestEndToEnd starts the dev server from a copy of this file with only sdk-url and port
	// changed, and waits for it on that port and for the sync of that URL: proof that the
	// dev server reads these keys.
}
