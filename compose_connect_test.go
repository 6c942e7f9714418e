package main

import (
	"fmt"
	"maps"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// docker-compose.connect.yml is Connect mode for the production stack, an override used as
// `docker compose -f docker-compose.prod.yml -f docker-compose.connect.yml`. These tests merge
// the two as compose does and check the result with checkProdCompose in Connect mode.

const connectComposePath = "docker-compose.connect.yml"

// prodConnectCompose returns docker-compose.prod.yml with docker-compose.connect.yml on top,
// read with readFile.
func prodConnectCompose(readFile func(string) ([]byte, error)) ([]byte, error) {
	base, err := readFile(prodComposePath)
	if err != nil {
		return nil, err
	}
	override, err := readFile(connectComposePath)
	if err != nil {
		return nil, err
	}
	return mergeCompose(base, override)
}

func TestProdComposeConnect(t *testing.T) {
	merged, err := prodConnectCompose(os.ReadFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range checkProdCompose(merged, os.ReadFile, true) {
		t.Error(p)
	}
}

// TestProdComposeConnectCatchesMistakes breaks docker-compose.connect.yml in one way at a time
// and expects checkProdCompose, in Connect mode, to say so.
func TestProdComposeConnectCatchesMistakes(t *testing.T) {
	original, err := os.ReadFile(connectComposePath)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		old, new   string // the first occurrence of old becomes new
		wantInProb string // a problem must contain this
	}{
		{"a replica not in Connect mode",
			"      INNGEST_CONNECT: \"1\"\n", "",
			"want 1 in the Connect variant"},
		{"a replica keeps its serve URL",
			"      INNGEST_SERVE_URL: \"\"\n", "",
			"want it unset or empty in Connect mode"},
		{"two replicas under one instance id",
			"INNGEST_INSTANCE_ID: app2", "INNGEST_INSTANCE_ID: app1",
			"share the Connect instance id"},
		{"a replica without an instance id",
			"      INNGEST_INSTANCE_ID: app3\n", "",
			"no Connect instance id"},
		{"gateway published on the host",
			`    command: ["inngest", "start", "--connect-gateway-port", "8289"]`,
			`    command: ["inngest", "start", "--connect-gateway-port", "8289"]` + "\n    ports: [\"127.0.0.1:8289:8289\"]",
			"gateway (port 8289) on the host"},
		{"gateway port moved onto a published one",
			`"--connect-gateway-port", "8289"`, `"--connect-gateway-port", "8288"`,
			"gateway (port 8288) on the host"},
		{"Inngest still syncs a URL",
			`command: ["inngest", "start", `, `command: ["inngest", "start", "-u", "http://lb:8081/api/inngest", `,
			"inngest -u"},
		{"Inngest keeps its networks (no !override: compose appends)",
			"    networks: !override\n      - inngest-store\n", "    networks:\n      - inngest-store\n",
			"shares networks"},
		{"gateway on MongoDB's network",
			"      - inngest-store\n      - inngest-connect\n", "      - inngest-store\n      - inngest-connect\n      - backend\n",
			"mongodb shares networks"},
		{"gateway on the load balancer's network",
			"    networks: !override\n      - web\n", "    networks: !override\n      - web\n      - inngest-connect\n",
			"lb shares networks"},
		{"a replica off the gateway's network",
			"    networks:\n      - inngest-connect\n", "",
			"app1 and inngest share no network"},
		{"gateway network internal: the dashboard is not published",
			"  inngest-connect:\n", "  inngest-connect:\n    internal: true\n",
			"are internal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(string(original), tt.old) {
				t.Fatalf("%s no longer contains %q: update this case", connectComposePath, tt.old)
			}
			broken := []byte(strings.Replace(string(original), tt.old, tt.new, 1))
			merged, err := prodConnectCompose(func(name string) ([]byte, error) {
				if name == connectComposePath {
					return broken, nil
				}
				return os.ReadFile(name)
			})
			if err != nil {
				t.Fatal(err)
			}
			probs := checkProdCompose(merged, os.ReadFile, true)
			for _, p := range probs {
				if strings.Contains(p, tt.wantInProb) {
					return
				}
			}
			t.Errorf("no problem mentions %q; got %d:\n%s", tt.wantInProb, len(probs), strings.Join(probs, "\n"))
		})
	}
}

func TestMergeCompose(t *testing.T) {
	const base = `
x-app: &app
  environment:
    A: "1"
    B: "2"
  networks: [web, backend]
services:
  app: *app
  inngest:
    command: ["inngest", "start", "-u", "x"]
    networks: [backend, store]
    ports: ["127.0.0.1:8288:8288"]
`
	const override = `
services:
  app:
    environment:
      B: ""
      C: "3"
    networks:
      - connect
  inngest:
    command: ["inngest", "start"]
    networks: !override [store, connect]
    ports: !reset []
`
	got, err := mergeCompose([]byte(base), []byte(override))
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	if err := yaml.Unmarshal(got, &c); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		what      string
		got, want any
	}{
		{"app environment (merged by key)", c.Services["app"].Environment, map[string]string{"A": "1", "B": "", "C": "3"}},
		{"app networks (added to)", []string(c.Services["app"].Networks), []string{"backend", "connect", "web"}},
		{"inngest command (replaced)", c.Services["inngest"].Command, []string{"inngest", "start"}},
		{"inngest networks (!override)", []string(c.Services["inngest"].Networks), []string{"connect", "store"}},
		{"inngest ports (!reset)", c.Services["inngest"].Ports, []string(nil)},
	} {
		if !reflect.DeepEqual(tt.got, tt.want) {
			t.Errorf("%s = %q; want %q\nmerged:\n%s", tt.what, tt.got, tt.want, got)
		}
	}
}

// composeReset and composeOverride stand for the !reset and !override tags of an override
// file: the value is removed, or replaces what the files before set.
type (
	composeReset    struct{}
	composeOverride struct{ v any }
)

// mergeCompose returns the compose file that `docker compose -f base -f override` makes, as
// YAML, for what this repository's compose files use (the merge rules of the Compose
// specification, "Merge"): mappings merged key by key; a service's networks merged by name;
// command, entrypoint and healthcheck.test replaced; other lists added to, without repeats;
// other values replaced; a value tagged !override replaces the earlier one whole, one tagged
// !reset removes it. It returns an error when either is not YAML.
func mergeCompose(base, override []byte) ([]byte, error) {
	var b any
	if err := yaml.Unmarshal(base, &b); err != nil {
		return nil, fmt.Errorf("base: %w", err)
	}
	var n yaml.Node
	if err := yaml.Unmarshal(override, &n); err != nil {
		return nil, fmt.Errorf("override: %w", err)
	}
	o, err := composeValue(&n)
	if err != nil {
		return nil, fmt.Errorf("override: %w", err)
	}
	return yaml.Marshal(mergeComposeValue(b, o, nil))
}

// composeValue decodes n as yaml.v3 decodes into any (aliases and << merge keys resolved),
// with the values tagged !reset and !override marked.
func composeValue(n *yaml.Node) (any, error) {
	switch n.Tag {
	case "!reset":
		return composeReset{}, nil
	case "!override":
		c := *n
		c.Tag = ""
		v, err := composeValue(&c)
		return composeOverride{v}, err
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return composeValue(n.Content[0])
	case yaml.AliasNode:
		return composeValue(n.Alias)
	case yaml.SequenceNode:
		out := []any{}
		for _, c := range n.Content {
			v, err := composeValue(c)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case yaml.MappingNode:
		out := map[string]any{}
		var merged []map[string]any
		for i := 0; i+1 < len(n.Content); i += 2 {
			v, err := composeValue(n.Content[i+1])
			if err != nil {
				return nil, err
			}
			if k := n.Content[i].Value; k != "<<" {
				out[k] = v
				continue
			}
			srcs, ok := v.([]any)
			if !ok {
				srcs = []any{v}
			}
			for _, src := range srcs {
				if m, ok := src.(map[string]any); ok {
					merged = append(merged, m)
				}
			}
		}
		for _, m := range merged { // explicit keys win, then the earlier merged mapping
			for k, v := range m {
				if _, ok := out[k]; !ok {
					out[k] = v
				}
			}
		}
		return out, nil
	}
	var v any
	if err := n.Decode(&v); err != nil {
		return nil, fmt.Errorf("line %d: %w", n.Line, err)
	}
	return v, nil
}

// mergeComposeValue returns over merged onto base, at path (the keys from the root).
func mergeComposeValue(base, over any, path []string) any {
	last := ""
	if len(path) > 0 {
		last = path[len(path)-1]
	}
	if len(path) == 3 && path[0] == "services" && last == "networks" {
		base, over = composeNetworkMap(base), composeNetworkMap(over)
	}
	switch o := over.(type) {
	case composeOverride:
		return o.v
	case map[string]any:
		bm, _ := base.(map[string]any)
		out := maps.Clone(bm)
		if out == nil {
			out = map[string]any{}
		}
		for k, v := range o {
			if _, ok := v.(composeReset); ok {
				delete(out, k)
				continue
			}
			out[k] = mergeComposeValue(bm[k], v, append(slices.Clone(path), k))
		}
		return out
	case []any:
		bl, ok := base.([]any)
		replaced := last == "command" || last == "entrypoint" || (last == "test" && len(path) > 1 && path[len(path)-2] == "healthcheck")
		if !ok || replaced {
			return o
		}
		out := slices.Clone(bl)
		for _, v := range o {
			if !slices.ContainsFunc(out, func(x any) bool { return reflect.DeepEqual(x, v) }) {
				out = append(out, v)
			}
		}
		return out
	}
	return over
}

// composeNetworkMap returns a service's networks as a mapping keyed by name (compose's long
// form), whichever form v is in; other values as they are.
func composeNetworkMap(v any) any {
	switch l := v.(type) {
	case []any:
		m := map[string]any{}
		for _, x := range l {
			m[fmt.Sprint(x)] = nil
		}
		return m
	case composeOverride:
		return composeOverride{composeNetworkMap(l.v)}
	}
	return v
}
