//go:build tools

// Package tools pins the Inngest dev server so that it builds from the Go module proxy.
package tools

import _ "github.com/inngest/inngest/cmd"
