package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"clerksync/clerk"
	"clerksync/clerk/clerkfake"
	"clerksync/reconcile"
	"clerksync/store"
)

// measureIncremental measures one incremental run of reconcile-users-with-clerk (-changed k)
// over n users through the dev server, as measureReconcile measures a full pass: the database
// holds all n (pre-loaded as the webhooks would, whatever -preload says) and follows the
// stand-in's instance, the users' watermark is recorded at the start, then k of the generated
// users change after it (GenerateChanged), and `clerk-user-sync reconcile --incremental`
// requests the run (the organizations' run it also starts ends at once). The stand-in sorts
// its list by updated_at on the first request after a change; that sort (the stand-in's cost,
// not Clerk's) is done before the clock starts. The outcome says UNEXPECTED unless the run
// was incremental and updated all k changed users.
func measureIncremental(ctx context.Context, o options, fake *clerkfake.Server, dbs *databases, n, k int) result {
	res := result{what: "incremental", users: n}
	var changed []string
	fill := func(st *store.Store) error {
		t0 := time.Now()
		if err := preload(ctx, st, n); err != nil {
			return fmt.Errorf("preload: %w", err)
		}
		res.preloaded, res.preloadTime = n, time.Since(t0)
		logf("incremental %d: %d users pre-loaded in %v", n, n, res.preloadTime.Round(time.Second))
		wm := time.Now().UTC().Truncate(time.Millisecond)
		if _, err := st.RecordClerkInstance(ctx, clerkfake.DefaultInstance, wm); err != nil {
			return err
		}
		if err := st.RecordReconcileWatermark(ctx, "users", wm, wm); err != nil {
			return err
		}
		fake.Generate(n) // forgets the changes of an earlier measurement
		changed = fake.GenerateChanged(k, wm)
		// The stand-in's sort, before the clock starts.
		api := clerk.NewAPI(clerk.APIConfig{SecretKey: secretKey, APIURL: fake.URL}, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if _, err := api.ListUsersUpdated(ctx, 1, 0); err != nil {
			return fmt.Errorf("warm-up list: %w", err)
		}
		return nil
	}
	s, m, eventID, err := launch(ctx, o, fake, dbs, fmt.Sprintf("rscale_i%d_%d", n, time.Now().Unix()), fill, "--incremental")
	if err != nil {
		res.outcome = "ERROR: " + err.Error()
		return res
	}
	defer s.stop()
	out := s.follow(ctx, &res, m, eventID, reconcile.FunctionID, usersContinuation, false)
	if out != nil {
		var sum reconcile.Summary
		switch err := decodeOutput(out, &sum); {
		case err != nil:
			res.outcome = "UNEXPECTED: " + err.Error() + ": " + res.outcome
		case !sum.Incremental || sum.Updated != len(changed):
			res.outcome = fmt.Sprintf("UNEXPECTED: %d changed, want an incremental run that updated them all: %s", len(changed), res.outcome)
		default:
			res.outcome = fmt.Sprintf("%d changed: %s", len(changed), res.outcome)
		}
	}
	countLiveUsers(ctx, s, &res)
	return res
}
