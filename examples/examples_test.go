package examples_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"clerksync/examples"
)

// TestNames: send knows an example of each event type the functions handle.
func TestNames(t *testing.T) {
	want := []string{
		"organization.created", "organization.deleted", "organization.updated",
		"organizationMembership.created", "organizationMembership.deleted", "organizationMembership.updated",
		"user.created", "user.deleted", "user.updated",
	}
	if got := examples.Names(); !reflect.DeepEqual(got, want) {
		t.Errorf("Names() = %q; want %q", got, want)
	}
}

// TestPayloads: each example is a Clerk event of the type it is named after, with an id in its
// data, as the webhook bridge expects.
func TestPayloads(t *testing.T) {
	for _, name := range examples.Names() {
		body, err := examples.Payload(name)
		if err != nil {
			t.Fatalf("Payload(%q) = %v", name, err)
		}
		var env struct {
			Object    string `json:"object"`
			Type      string `json:"type"`
			Timestamp int64  `json:"timestamp"`
			Data      struct {
				ID string `json:"id"`
			} `json:"data"`
		}
		if err := json.Unmarshal(body, &env); err != nil {
			t.Errorf("Payload(%q) is not JSON: %v", name, err)
			continue
		}
		if env.Object != "event" || env.Type != name || env.Timestamp <= 0 || env.Data.ID == "" {
			t.Errorf("Payload(%q) = object %q, type %q, timestamp %d, data.id %q; want an event of type %q with a timestamp and a data.id",
				name, env.Object, env.Type, env.Timestamp, env.Data.ID, name)
		}
	}
	if _, err := examples.Payload("organization.nope"); err == nil || !strings.Contains(err.Error(), "organizationMembership.created") {
		t.Errorf("Payload(organization.nope) = %v; want an error listing the known types", err)
	}
}
