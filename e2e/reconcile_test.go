package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"clerksync/reconcile"
)

// postedEvent is an event posted to the event API stand-in, with the key it was posted with.
type postedEvent struct {
	Key  string
	Name string         `json:"name"`
	ID   *string        `json:"id"`
	Data map[string]any `json:"data"`
}

// eventRecorder is an Inngest event API stand-in that keeps what it accepts: it answers POST
// /e/{key} as Inngest does, 401 for a key other than accept ("" accepts any).
type eventRecorder struct {
	url    string
	accept string
	mu     sync.Mutex
	events []postedEvent
}

// startEventRecorder starts an eventRecorder that accepts the event key accept.
func startEventRecorder(t *testing.T, accept string) *eventRecorder {
	t.Helper()
	rec := &eventRecorder{accept: accept}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, ok := strings.CutPrefix(r.URL.Path, "/e/")
		if r.Method != http.MethodPost || !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if rec.accept != "" && key != rec.accept {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"error":"Event key not found","status":401}`)
			return
		}
		body, _ := io.ReadAll(r.Body)
		var evts []postedEvent
		if err := json.Unmarshal(body, &evts); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `{"error":%q,"status":400}`, err)
			return
		}
		rec.mu.Lock()
		defer rec.mu.Unlock()
		ids := []string{}
		for _, e := range evts {
			e.Key = key
			rec.events = append(rec.events, e)
			ids = append(ids, fmt.Sprintf("01JEVENT%018d", len(rec.events)))
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"ids": ids, "status": 200})
	}))
	t.Cleanup(srv.Close)
	rec.url = srv.URL
	return rec
}

// posted returns the events accepted so far.
func (r *eventRecorder) posted() []postedEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]postedEvent(nil), r.events...)
}

// TestReconcileCommand: `reconcile` sends reconcile.RequestEvent with the service's Inngest
// settings (the event key, or dev mode), allow_mass_delete true only with --allow-mass-delete,
// and without an event id, so that each call asks for a run of its own; it prints the event's
// id and where to watch the runs. Wrong settings or arguments send nothing.
func TestReconcileCommand(t *testing.T) {
	parallel(t)
	const eventKey = "evtkey-reconcile-0123456789"
	cloud := startEventRecorder(t, eventKey)
	dev := startEventRecorder(t, "")
	cloudVars := map[string]string{
		"INNGEST_EVENT_KEY": eventKey, "INNGEST_SIGNING_KEY": "signkey-test-0123456789abcdef", "INNGEST_SERVE_URL": "https://sync.example.com/api/inngest",
		"INNGEST_BASE_URL": cloud.url, "CLERK_SECRET_KEY": "sk_test_reconcile",
	}
	devVars := map[string]string{"INNGEST_DEV": dev.url, "CLERK_SECRET_KEY": "sk_test_reconcile"}
	with := func(vars map[string]string, change map[string]string) map[string]string {
		v := map[string]string{}
		for k, val := range vars {
			v[k] = val
		}
		for k, val := range change {
			v[k] = val
		}
		return v
	}
	tests := []struct {
		name      string
		args      []string
		vars      map[string]string
		to        *eventRecorder
		wantAllow bool
		wantInc   bool
		wantErr   string // "" for success
		wantOut   []string
	}{
		{"allow mass delete", []string{"--allow-mass-delete"}, cloudVars, cloud, true, false, "", []string{"event id 01JEVENT", "self-hosted Inngest's UI at " + cloud.url, reconcile.FunctionID, reconcile.OrganizationsFunctionID, "these two runs only"}},
		{"plain request", nil, cloudVars, cloud, false, false, "", []string{"with their safety checks"}},
		{"incremental", []string{"--incremental"}, cloudVars, cloud, false, true, "", []string{"an incremental run of " + reconcile.FunctionID, "with their safety checks"}},
		{"dev mode", []string{"-allow-mass-delete"}, devVars, dev, true, false, "", []string{"dev server's UI at " + dev.url}},
		{"again: another event", []string{"--allow-mass-delete"}, devVars, dev, true, false, "", []string{"event id 01JEVENT"}},
		{"event key refused", nil, with(cloudVars, map[string]string{"INNGEST_EVENT_KEY": "evtkey-wrong-0123456789"}), nil, false, false, "unauthorized", nil},
		{"no Clerk key", []string{"--allow-mass-delete"}, with(cloudVars, map[string]string{"CLERK_SECRET_KEY": ""}), nil, false, false, "CLERK_SECRET_KEY is not set", nil},
		{"old variable still set", []string{"--allow-mass-delete"}, with(cloudVars, map[string]string{"RECONCILE_ALLOW_MASS_DELETE": "1"}), nil, false, false, "Unset it", nil},
		{"no Inngest settings", nil, with(cloudVars, map[string]string{"INNGEST_EVENT_KEY": ""}), nil, false, false, "INNGEST_EVENT_KEY missing", nil},
		{"stray argument", []string{"now"}, cloudVars, nil, false, false, "no arguments", nil},
		{"unknown flag", []string{"--force"}, cloudVars, nil, false, false, "-force", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(cloud.posted()) + len(dev.posted())
			stdout, stderr, err := command(t.Context(), t, tt.vars, append([]string{"reconcile"}, tt.args...)...)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("reconcile %s = %v; want an error containing %q", strings.Join(tt.args, " "), err, tt.wantErr)
				}
				if k := tt.vars["INNGEST_EVENT_KEY"]; k != "" && strings.Contains(err.Error(), k) {
					t.Errorf("reconcile error %q shows the event key", err)
				}
				if after := len(cloud.posted()) + len(dev.posted()); after != before {
					t.Errorf("events accepted = %d after a refused reconcile; want %d", after, before)
				}
				return
			}
			if err != nil {
				t.Fatalf("reconcile %s = %v; stderr:\n%s", strings.Join(tt.args, " "), err, stderr)
			}
			posted := tt.to.posted()
			if len(posted) == 0 {
				t.Fatal("no event accepted")
			}
			got := posted[len(posted)-1]
			if got.Name != reconcile.RequestEvent || got.ID != nil || got.Data[reconcile.AllowMassDeleteField] != tt.wantAllow || got.Data[reconcile.IncrementalField] != tt.wantInc {
				t.Errorf("event sent = %+v (id %v); want %s with %s: %t, %s: %t and no id", got, got.ID, reconcile.RequestEvent,
					reconcile.AllowMassDeleteField, tt.wantAllow, reconcile.IncrementalField, tt.wantInc)
			}
			if tt.to == cloud && got.Key != eventKey {
				t.Errorf("event posted with key %q; want INNGEST_EVENT_KEY", got.Key)
			}
			for _, want := range tt.wantOut {
				if !strings.Contains(stdout, want) {
					t.Errorf("reconcile printed %q; want it to say %q", stdout, want)
				}
			}
		})
	}
	if got := len(dev.posted()); got != 2 {
		t.Errorf("events accepted in dev mode = %d; want 2, one per call", got)
	}
}
