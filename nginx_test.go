package main

import (
	"fmt"
	"strings"
)

// A small reader of nginx's configuration syntax, for the checks of the load balancer's
// configuration (deploy/nginx.conf): no nginx runs where the tests run.

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
