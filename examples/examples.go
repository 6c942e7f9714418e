// Package examples holds example webhook payloads, taken from Clerk's documentation, for
// `clerk-user-sync send` to sign and post: one Clerk user (user.created, user.updated,
// user.deleted), one organization (organization.created, .updated, .deleted) and one of its
// memberships (organizationMembership.created, .updated, .deleted). Each file is named after
// the event type it carries.
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

// Payload returns the example body for the event type (user.created,
// organizationMembership.deleted, ...: one of Names). It returns an error listing the known
// types when there is none.
func Payload(eventType string) ([]byte, error) {
	b, err := files.ReadFile(eventType + ".json")
	if err != nil {
		return nil, fmt.Errorf("no example for %q; known: %s", eventType, strings.Join(Names(), ", "))
	}
	return b, nil
}
