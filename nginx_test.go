package main

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// A small reader of nginx's configuration syntax and of how nginx routes a request through
// it (which location, which methods, which body limit), for the checks of the load balancer's
// configuration (deploy/nginx.conf): no nginx runs where the tests run.

// TestNginxRouting reads how nginx routes requests, first through a configuration built to tell
// its precedence rules apart, then through the load balancer's: which location answers, with
// which status, or whether the request goes to the replicas. The expected answers are those
// nginx itself gave to the same requests on the same configurations.
func TestNginxRouting(t *testing.T) {
	const rules = `server {
    listen 1;
    location = /exact { return 201; }
    location ^~ /static/ { return 202; }
    location ~ \.php$ { return 203; }
    location /docs/ { return 204; }
    location ~* \.JPG$ { return 205; }
    location / { return 206; }
    location /m {
        limit_except GET { deny all; }
        return 207;
    }
}`
	raw, err := os.ReadFile("deploy/nginx.conf")
	if err != nil {
		t.Fatal(err)
	}
	lb, err := parseNginx(string(raw))
	if err != nil {
		t.Fatal(err)
	}
	ruled, err := parseNginx(rules)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		conf         nginxBlock
		port, method string
		path         string
		want         int // the status nginx answers with itself; 0: proxied
	}{
		{ruled, "1", "GET", "/exact", 201},
		{ruled, "1", "GET", "/exact/x", 206},
		{ruled, "1", "GET", "/static/a.php", 202}, // ^~ stops the regular expressions
		{ruled, "1", "GET", "/docs/a.php", 203},   // a regular expression before a prefix
		{ruled, "1", "GET", "/docs/a", 204},
		{ruled, "1", "GET", "/x.jpg", 205}, // ~* ignores case
		{ruled, "1", "GET", "/a", 206},
		{ruled, "1", "GET", "/m", 207},
		{ruled, "1", "HEAD", "/m", 207}, // limit_except GET allows HEAD
		{ruled, "1", "POST", "/m", 403},
		{ruled, "1", "PUT", "/m", 403},

		{lb, "8080", "POST", "/api/webhooks/clerk", 0},
		{lb, "8080", "GET", "/api/webhooks/clerk", 405},
		{lb, "8080", "HEAD", "/api/webhooks/clerk", 405},
		{lb, "8080", "POST", "/api/sync/users/user_2abcXYZ", 0},
		{lb, "8080", "GET", "/api/sync/users/user_2abcXYZ", 405},
		{lb, "8080", "POST", "/api/sync/users/user_x/extra", 404},
		{lb, "8080", "POST", "/api/sync/users/", 404},
		{lb, "8080", "POST", "/api/inngest", 404},
		{lb, "8080", "PUT", "/api/inngest", 404},
		{lb, "8080", "GET", "/healthz", 404},
		{lb, "8081", "POST", "/api/inngest", 0},
		{lb, "8081", "PUT", "/api/inngest", 0},
		{lb, "8081", "GET", "/api/inngest", 405},
		{lb, "8081", "DELETE", "/api/inngest", 405},
		{lb, "8081", "OPTIONS", "/api/inngest", 405},
		{lb, "8081", "GET", "/lb-health", 200},
	}
	for _, tt := range tests {
		_, _, got, _ := tt.conf.route(tt.port, tt.method, tt.path)
		if got != tt.want {
			t.Errorf("%s %s on port %s = %d; want %d (0: proxied)", tt.method, tt.path, tt.port, got, tt.want)
		}
	}

	// Body limits: nginx took 900 KB and refused 1.2 MB on the webhook, took 6 MB and refused
	// 9 MB on /api/inngest.
	for _, tt := range []struct {
		port, path string
		want       int64
	}{{"8080", "/api/webhooks/clerk", 1 << 20}, {"8081", "/api/inngest", 8 << 20}} {
		srv := lb.server(tt.port)
		if srv == nil {
			t.Fatalf("deploy/nginx.conf has no server on port %s", tt.port)
		}
		loc := srv.locationFor(tt.path)
		if loc == nil {
			t.Fatalf("deploy/nginx.conf has no location for %s on port %s", tt.path, tt.port)
		}
		if got := bodyLimit(lb, srv, loc.block); got != tt.want {
			t.Errorf("client_max_body_size of %s on port %s = %d; want %d", tt.path, tt.port, got, tt.want)
		}
	}
}

// nginxDirective is one directive of an nginx configuration, with its block if it has one.
type nginxDirective struct {
	name  string
	args  []string
	block nginxBlock
}

type nginxBlock []nginxDirective

// parseNginx reads nginx's configuration syntax: directives ending in ';' or a '{ }' block,
// '#' comments, quoted arguments.
func parseNginx(s string) (nginxBlock, error) {
	var tokens []string
	for i := 0; i < len(s); {
		switch ch := s[i]; {
		case ch == '#':
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r':
			i++
		case ch == '{' || ch == '}' || ch == ';':
			tokens = append(tokens, string(ch))
			i++
		case ch == '"' || ch == '\'':
			j := i + 1
			for j < len(s) && s[j] != ch {
				if s[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(s) {
				return nil, fmt.Errorf("unterminated quote")
			}
			tokens = append(tokens, s[i+1:j])
			i = j + 1
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t\r\n{};#", rune(s[j])) {
				j++
			}
			tokens = append(tokens, s[i:j])
			i = j
		}
	}
	var parse func() (nginxBlock, error)
	pos := 0
	parse = func() (nginxBlock, error) {
		var b nginxBlock
		var cur []string
		for pos < len(tokens) {
			t := tokens[pos]
			pos++
			switch t {
			case ";":
				if len(cur) == 0 {
					return nil, fmt.Errorf("empty directive")
				}
				b = append(b, nginxDirective{name: cur[0], args: cur[1:]})
				cur = nil
			case "{":
				if len(cur) == 0 {
					return nil, fmt.Errorf("block without a name")
				}
				inner, err := parse()
				if err != nil {
					return nil, err
				}
				b = append(b, nginxDirective{name: cur[0], args: cur[1:], block: inner})
				cur = nil
			case "}":
				if len(cur) > 0 {
					return nil, fmt.Errorf("directive %q without ';'", cur[0])
				}
				return b, nil
			default:
				cur = append(cur, t)
			}
		}
		if len(cur) > 0 {
			return nil, fmt.Errorf("directive %q without ';'", cur[0])
		}
		return b, nil
	}
	b, err := parse()
	if err == nil && pos < len(tokens) {
		err = fmt.Errorf("unbalanced '}'")
	}
	return b, err
}

// all returns the directives named name at any depth.
func (b nginxBlock) all(name string) []nginxDirective {
	var out []nginxDirective
	for _, d := range b {
		if d.name == name {
			out = append(out, d)
		}
		out = append(out, d.block.all(name)...)
	}
	return out
}

// first returns the first directive named name directly in b, or nil.
func (b nginxBlock) first(name string) *nginxDirective {
	for i := range b {
		if b[i].name == name {
			return &b[i]
		}
	}
	return nil
}

// values returns the second argument of every directive name whose first argument is key.
func (b nginxBlock) values(name, key string) []string {
	var out []string
	for _, d := range b.all(name) {
		if len(d.args) == 2 && strings.EqualFold(d.args[0], key) {
			out = append(out, d.args[1])
		}
	}
	return out
}

// listens reports whether a server block listens on port (listen port, or host:port).
func (b nginxBlock) listens(port string) bool {
	for _, d := range b {
		if d.name == "listen" && len(d.args) > 0 {
			a := d.args[0]
			if a == port || strings.HasSuffix(a, ":"+port) {
				return true
			}
		}
	}
	return false
}

// listensAnywhere reports whether any server block listens on port.
func (b nginxBlock) listensAnywhere(port string) bool {
	for _, srv := range b.all("server") {
		if srv.block.listens(port) {
			return true
		}
	}
	return false
}

// route is what nginx does with a request of method to path on port: the server and location
// that take it, the status nginx answers it with itself (0 when it proxies it), and where it
// proxies it (proxy_pass's argument). A request that no server or location takes, or that a
// location neither answers nor proxies, is 404 (nginx looks for a file under its root).
func (conf nginxBlock) route(port, method, path string) (srv, loc nginxBlock, status int, pass string) {
	if srv = conf.server(port); srv == nil {
		return nil, nil, 404, ""
	}
	d := srv.locationFor(path)
	if d == nil {
		return srv, nil, 404, ""
	}
	loc = d.block
	if code := loc.methodAnswer(method); code != 0 {
		return srv, loc, code, ""
	}
	if ret := loc.first("return"); ret != nil && len(ret.args) > 0 {
		code, _ := strconv.Atoi(ret.args[0])
		return srv, loc, code, ""
	}
	if p := loc.first("proxy_pass"); p != nil && len(p.args) == 1 {
		return srv, loc, 0, p.args[0]
	}
	return srv, loc, 404, ""
}

// server returns the server block that listens on port, or nil.
func (b nginxBlock) server(port string) nginxBlock {
	for _, srv := range b.all("server") {
		if srv.block.listens(port) {
			return srv.block
		}
	}
	return nil
}

// locationFor returns the location of server srv that nginx picks for uri, or nil: an exact
// match (=); else the longest prefix if it has ^~; else the first regular expression (~, ~*)
// that matches, in the file's order; else the longest prefix. Nested locations are not read.
func (srv nginxBlock) locationFor(uri string) *nginxDirective {
	var longest *nginxDirective
	longestLen, longestStops := -1, false
	var regexes []*nginxDirective
	for i := range srv {
		loc := &srv[i]
		if loc.name != "location" || len(loc.args) == 0 {
			continue
		}
		mod, path := "", loc.args[len(loc.args)-1]
		if len(loc.args) == 2 {
			mod = loc.args[0]
		}
		switch mod {
		case "=":
			if uri == path {
				return loc
			}
		case "~", "~*":
			regexes = append(regexes, loc)
		case "", "^~":
			if strings.HasPrefix(uri, path) && len(path) > longestLen {
				longest, longestLen, longestStops = loc, len(path), mod == "^~"
			}
		}
	}
	if longest != nil && longestStops {
		return longest
	}
	for _, loc := range regexes {
		expr := loc.args[1]
		if loc.args[0] == "~*" {
			expr = "(?i)" + expr
		}
		if re, err := regexp.Compile(expr); err == nil && re.MatchString(uri) {
			return loc
		}
	}
	return longest
}

// methodAnswer is what nginx does with a request of method at location loc: 0 when the
// request goes on (to proxy_pass, or to the location's own return), else the status of the
// answer that stops it there: a `return` inside `if ($request_method ...)`, or limit_except's
// block (403 with `deny all`).
func (loc nginxBlock) methodAnswer(method string) int {
	for _, d := range loc {
		switch d.name {
		case "if":
			cond := strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(strings.Join(d.args, " "), "("), ")"))
			f := strings.Fields(cond)
			if len(f) != 3 || f[0] != "$request_method" {
				continue
			}
			if nginxCondition(method, f[1], f[2]) {
				if ret := d.block.first("return"); ret != nil && len(ret.args) > 0 {
					code, _ := strconv.Atoi(ret.args[0])
					return code
				}
			}
		case "limit_except":
			allowed := false
			for _, m := range d.args {
				if m == method || (m == "GET" && method == "HEAD") {
					allowed = true
				}
			}
			if !allowed {
				for _, deny := range d.block.all("deny") {
					if len(deny.args) == 1 && deny.args[0] == "all" {
						return 403
					}
				}
			}
		}
	}
	return 0
}

// nginxCondition evaluates an `if` comparison of value with arg: = and != compare strings,
// ~ and !~ match a regular expression (~* and !~* without case). It is false for any other
// operator.
func nginxCondition(value, op, arg string) bool {
	switch op {
	case "=":
		return value == arg
	case "!=":
		return value != arg
	case "~", "!~", "~*", "!~*":
		if strings.HasSuffix(op, "*") {
			arg = "(?i)" + arg
		}
		re, err := regexp.Compile(arg)
		if err != nil {
			return false
		}
		return re.MatchString(value) == !strings.HasPrefix(op, "!")
	}
	return false
}

// bodyLimit returns client_max_body_size in bytes where nginx reads it for a request at loc
// of server srv in configuration conf: the location's, else the server's, else the http
// block's, else nginx's default of 1m. It returns -1 for a value it cannot read.
func bodyLimit(conf, srv, loc nginxBlock) int64 {
	v := "1m"
	for _, b := range []nginxBlock{loc, srv, conf} {
		if d := b.first("client_max_body_size"); d != nil && len(d.args) == 1 {
			v = d.args[0]
			break
		}
	}
	m := regexp.MustCompile(`^(\d+)([kKmMgG]?)$`).FindStringSubmatch(v)
	if m == nil {
		return -1
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	switch strings.ToLower(m[2]) {
	case "k":
		n <<= 10
	case "m":
		n <<= 20
	case "g":
		n <<= 30
	}
	return n
}

// requestLimit returns the limit_req zone that applies at loc of server srv ("" when none),
// and an error when that zone has no limit_req_zone in conf.
func requestLimit(conf, srv, loc nginxBlock) (string, error) {
	for _, b := range []nginxBlock{loc, srv} {
		d := b.first("limit_req")
		if d == nil {
			continue
		}
		for _, a := range d.args {
			if zone, ok := strings.CutPrefix(a, "zone="); ok {
				for _, z := range conf.all("limit_req_zone") {
					for _, za := range z.args {
						if strings.HasPrefix(za, "zone="+zone+":") {
							return zone, nil
						}
					}
				}
				return zone, fmt.Errorf("limit_req zone=%s has no limit_req_zone", zone)
			}
		}
	}
	return "", nil
}
