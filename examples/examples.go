// Package examples holds signed-webhook example payloads for one Clerk user (created, updated,
// deleted), taken from Clerk's documentation, for `clerk-user-sync send`.
package examples

import (
	"embed"
	"fmt"
	"sort"
	"strings"
)

//go:embed *.json
var files embed.FS

// Names returns the event types there is an example for, sorted.
func Names() []string {
	entries, _ := files.ReadDir(".")
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, strings.TrimSuffix(e.Name(), ".json"))
	}
	sort.Strings(names)
	return names
}

// Payload returns the example body for the event type (user.created, user.updated,
// user.deleted). It returns an error listing the known types when there is none.
func Payload(eventType string) ([]byte, error) {
	b, err := files.ReadFile(eventType + ".json")
	if err != nil {
		return nil, fmt.Errorf("no example for %q; known: %s", eventType, strings.Join(Names(), ", "))
	}
	return b, nil
}
