package reconcile_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/inngest/inngestgo"

	"clerksync/clerk/clerkfake"
	"clerksync/reconcile"
	"clerksync/store"
)

// stepsScenario is a run whose steps TestMemoizedSteps pins: what the database and Clerk hold
// before it, the steps it makes with their outputs, and its output.
type stepsScenario struct {
	name string
	// orgs: reconcile-organizations-with-clerk; otherwise reconcile-users-with-clerk.
	orgs bool
	cfg  reconcile.Config
	// setup fills the database and the stand-in.
	setup func(t *testing.T, st *store.Store, fake *clerkfake.Server)
	// steps are the steps the run makes, in order, each with its output as Inngest memoizes
	// it (JSON, compact).
	steps []memoized
	// output is the run's output (JSON, compact).
	output string
}

// TestMemoizedSteps pins the ids and the outputs of the steps of both reconciliations, as
// Inngest memoizes them. A run in flight across an upgrade is carried on by the new version
// from the outputs the old one memoized: a renamed step is run again, and an output whose
// fields were renamed is read as zeros. Each run's steps must be exactly those listed, and a
// run handed those outputs (with a database and a Clerk that hold nothing) must end at once with
// the same output, calling no step and asking Clerk nothing.
func TestMemoizedSteps(t *testing.T) {
	t.Parallel()
	usersSetup := func(t *testing.T, st *store.Store, fake *clerkfake.Server) {
		seed(t, st, fakeUsers(5, 1000)...)
		seed(t, st, clerkfake.NewUser("user_gone1", "Gone", 1000), clerkfake.NewUser("user_gone2", "Gone", 1000))
		for _, u := range fakeUsers(6, 2000) {
			fake.Put(u)
		}
	}
	orgsSetup := func(t *testing.T, st *store.Store, fake *clerkfake.Server) {
		stored := append(fakeOrgs(3, 1000), clerkfake.NewOrganization("org_gone1", "Gone", 1000))
		seedOrgs(t, st, stored, append(fakeMembers(stored, 1, 1000), clerkfake.NewMembership("org_01", "user_x", "org:member", 1000)))
		orgs := fakeOrgs(4, 2000)
		for _, o := range orgs {
			fake.PutOrganization(o)
		}
		for _, m := range fakeMembers(orgs, 1, 2000) {
			fake.PutMembership(m)
		}
	}
	const inst = `"instance":"` + clerkfake.DefaultInstance + `"`
	usersPages := []memoized{
		{"start-pass", `{"at":1700000000000}`}, // when the pass started: its watermark (incremental.go)
		{"check-instance", `{` + inst + `,"recorded":""}`},
		{"clear-marks", `{"dropped":0}`},
		{"list-0", `{"count":4,"listed":4}`},
		{"list-4", `{"count":2,"listed":2}`},
		{"scan-0", `{"live":7,"found":2,"done":true}`},
		{"check-overlap", `{` + inst + `,"live":7,"listed":6,"listed_and_stored":5,"refused":false}`},
		{"write-0", `{"offset":0,"count":4,"inserted":0,"updated":4,"skipped":0,"failed":0}`},
		{"write-4", `{"offset":4,"count":2,"inserted":1,"updated":1,"skipped":0,"failed":0}`},
	}
	orgsPages := []memoized{
		{"org-start-pass", `{}`},
		{"check-instance", `{` + inst + `,"recorded":""}`},
		{"org-clear-marks", `{"dropped":0}`},
		{"org-list-0", `{"count":3,"listed":3,"listed_and_stored":3}`},
		{"org-list-3", `{"count":1,"listed":1,"listed_and_stored":0}`},
		{"org-check-overlap", `{` + inst + `,"live":4,"listed":4,"listed_and_stored":3,"refused":false,"live_memberships":5}`},
		{"org-write-0", `{"count":3,"inserted":0,"updated":3,"skipped":0,"failed":0}`},
		{"org-write-3", `{"count":1,"inserted":1,"updated":0,"skipped":0,"failed":0}`},
		{"org-members-0", `{"fetched":4,"done":4,"last":"org_04","seen":4,"found":1,"inserted":1,"updated":3,"skipped":0,"failed":0}`},
		{"org-find-deletions-0", `{"scanned":5,"found":1,"last":"org_gone1"}`},
	}
	tests := []stepsScenario{{
		name:  "users",
		cfg:   reconcile.Config{PageSize: 4, MaxDeleteShare: 0.5},
		setup: usersSetup,
		steps: append(usersPages[:len(usersPages):len(usersPages)],
			memoized{"cap-deletions", `{"live":7,"candidates":2,"refused":0}`},
			memoized{"delete-0", `{"done":2,"deleted":2,"still_in_clerk":0,"inserted":0,"updated":0,"skipped":0,"failed":0,"fetched":2,"last":"user_gone2"}`},
			// the marks: listed, candidates
			memoized{"drop-marks", `{"dropped":2}`},
			memoized{"end-pass", `{}`},
		),
		output: `{"pages":2,"seen":6,"inserted":1,"updated":5,"skipped":0,"failed":0,"deleted":2,"still_in_clerk":0,"refused":0,"refused_foreign":false}`,
	}, {
		name:  "users, mass deletion refused",
		cfg:   reconcile.Config{PageSize: 4, MaxDeleteShare: 0.1},
		setup: usersSetup,
		steps: append(usersPages[:len(usersPages):len(usersPages)],
			memoized{"cap-deletions", `{"live":7,"candidates":2,"refused":2}`},
			memoized{"drop-marks", `{"dropped":2}`},
			memoized{"end-pass", `{}`},
		),
		output: `{"pages":2,"seen":6,"inserted":1,"updated":5,"skipped":0,"failed":0,"deleted":0,"still_in_clerk":0,"refused":2,"refused_foreign":false}`,
	}, {
		name:  "organizations",
		orgs:  true,
		cfg:   reconcile.Config{PageSize: 3, MaxDeleteShare: 0.5},
		setup: orgsSetup,
		steps: append(orgsPages[:len(orgsPages):len(orgsPages)],
			memoized{"org-cap-deletions", `{"organizations":1,"refused_organizations":0,"memberships":1,"refused_memberships":0}`},
			memoized{"org-delete-0", `{"done":1,"deleted":1,"still_in_clerk":0,"inserted":0,"updated":0,"skipped":0,"failed":0,"fetched":1,"last":"org_gone1"}`},
			memoized{"member-delete-0", `{"done":1,"deleted":1,"still_in_clerk":0,"inserted":0,"updated":0,"skipped":0,"failed":0,"fetched":1,"last":"orgmem_01_x"}`},
			// the marks: listed, seen, candidates, members-candidates
			memoized{"org-drop-marks", `{"dropped":4}`},
			memoized{"org-end-pass", `{}`},
		),
		output: `{"pages":2,` +
			`"organizations":{"seen":4,"inserted":1,"updated":3,"skipped":0,"failed":0,"deleted":1,"still_in_clerk":0,"refused":0},` +
			`"memberships":{"seen":4,"inserted":1,"updated":3,"skipped":0,"failed":0,"deleted":1,"still_in_clerk":0,"refused":0},"refused_foreign":false}`,
	}, {
		name:  "organizations, mass deletions refused",
		orgs:  true,
		cfg:   reconcile.Config{PageSize: 3, MaxDeleteShare: 0.1},
		setup: orgsSetup,
		steps: append(orgsPages[:len(orgsPages):len(orgsPages)],
			memoized{"org-cap-deletions", `{"organizations":1,"refused_organizations":1,"memberships":1,"refused_memberships":1}`},
			memoized{"org-drop-marks", `{"dropped":4}`},
			memoized{"org-end-pass", `{}`},
		),
		output: `{"pages":2,` +
			`"organizations":{"seen":4,"inserted":1,"updated":3,"skipped":0,"failed":0,"deleted":0,"still_in_clerk":0,"refused":1},` +
			`"memberships":{"seen":4,"inserted":1,"updated":3,"skipped":0,"failed":0,"deleted":0,"still_in_clerk":0,"refused":1},"refused_foreign":false}`,
	}, {
		name: "organizations turned off",
		orgs: true,
		cfg:  reconcile.Config{PageSize: 3, MaxDeleteShare: 0.5},
		setup: func(t *testing.T, st *store.Store, fake *clerkfake.Server) {
			fake.DisableOrganizations()
		},
		steps: []memoized{
			{"org-start-pass", `{}`},
			{"check-instance", `{` + inst + `,"recorded":""}`},
			{"org-clear-marks", `{"dropped":0}`},
			{"org-list-0", `{"count":0,"listed":0,"listed_and_stored":0,"not_enabled":true}`},
			{"org-drop-marks", `{"dropped":0}`},
			{"org-end-pass", `{}`},
		},
		output: `{"pages":0,` +
			`"organizations":{"seen":0,"inserted":0,"updated":0,"skipped":0,"failed":0,"deleted":0,"still_in_clerk":0,"refused":0},` +
			`"memberships":{"seen":0,"inserted":0,"updated":0,"skipped":0,"failed":0,"deleted":0,"still_in_clerk":0,"refused":0},` +
			`"refused_foreign":false,"organizations_not_enabled":true}`,
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			drive := func(st *store.Store, fake *clerkfake.Server, done []memoized) ([]inngestCall, string) {
				r := newReconciler(t, st, fake, tc.cfg)
				register, fnID := r.Register, reconcile.FunctionID
				if tc.orgs {
					register, fnID = r.RegisterOrganizations, reconcile.OrganizationsFunctionID
				}
				calls, out := driveFunctionFrom(t, func(c inngestgo.Client, s string) error { return register(c, s) }, fnID, cronEvent(), done, 40)
				return calls, compact(t, out)
			}

			st := openStore(t)
			fake := clerkfake.New(t, testKey)
			tc.setup(t, st, fake)
			calls, out := drive(st, fake, nil)
			var got []memoized
			for _, c := range calls {
				if c.Op != "" {
					got = append(got, memoized{c.Step, compact(t, c.Data)})
				}
			}
			if !equalSteps(got, tc.steps) {
				t.Errorf("steps =\n%s\nwant\n%s", showSteps(got), showSteps(tc.steps))
			}
			if out != tc.output {
				t.Errorf("run output = %s\nwant %s", out, tc.output)
			}

			// The same run, carried on from the memoized steps by this version of the code.
			empty := clerkfake.New(t, testKey)
			calls, out = drive(openStore(t), empty, tc.steps)
			if len(calls) != 1 || calls[0].Op != "" || out != tc.output {
				var ran []string
				for _, c := range calls[:len(calls)-1] {
					ran = append(ran, c.Step+" "+c.Op)
				}
				t.Errorf("run handed the memoized steps: ran steps %q, then output %s; want no step, output %s", ran, out, tc.output)
			}
			if reqs := empty.Requests(); len(reqs) != 0 {
				t.Errorf("run handed the memoized steps asked Clerk %q; want nothing", reqs)
			}
		})
	}
}

// compact returns the JSON b without insignificant space.
func compact(t *testing.T, b []byte) string {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return buf.String()
}

// equalSteps reports whether a and b are the same steps with the same outputs.
func equalSteps(a, b []memoized) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// showSteps lists steps one a line, for failure messages.
func showSteps(steps []memoized) string {
	var b strings.Builder
	for _, s := range steps {
		b.WriteString("  " + s.Step + " " + s.Data + "\n")
	}
	return b.String()
}
