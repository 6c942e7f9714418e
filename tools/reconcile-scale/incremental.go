package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"clerksync/clerk"
	"clerksync/clerk/clerkfake"
	"clerksync/reconcile"
	"clerksync/tools/internal/proc"
)

// measureIncremental measures one incremental reconciliation run (-changed k) over n users:
// the database holds all n (pre-loaded as the webhooks would, whatever -preload says) and
// follows the stand-in's instance, the watermark is recorded at the start, then k of the
// generated users change after it (GenerateChanged). The run is reconcile.RunIncremental in
// this process, its steps inline: the work of the run's steps against the stand-in and the
// database, without the Inngest dev server's round trips (a handful of steps for 1,000 changes:
// see docs/reconciliation.md). The stand-in sorts its list by updated_at on the first request
// after a change; that sort (the stand-in's cost, not Clerk's) is done before the clock starts.
// The peak RSS is this process's (the stand-in's included).
func measureIncremental(ctx context.Context, o options, fake *clerkfake.Server, dbs *databases, n, k int) result {
	res := result{what: "incremental", users: n}
	fail := func(err error) result {
		res.outcome = "ERROR: " + err.Error()
		return res
	}
	name := fmt.Sprintf("rscale_i%d_%d", n, time.Now().Unix())
	st, err := dbs.open(ctx, name)
	if err != nil {
		return fail(err)
	}
	defer st.Close(context.Background())
	t0 := time.Now()
	if err := preload(ctx, st, n); err != nil {
		return fail(fmt.Errorf("preload: %w", err))
	}
	res.preloaded, res.preloadTime = n, time.Since(t0)
	logf("incremental %d: %d users pre-loaded in %v", n, n, res.preloadTime.Round(time.Second))

	wm := time.Now().UTC().Truncate(time.Millisecond)
	if _, err := st.RecordClerkInstance(ctx, clerkfake.DefaultInstance, wm); err != nil {
		return fail(err)
	}
	if err := st.RecordReconcileWatermark(ctx, "users", wm, wm); err != nil {
		return fail(err)
	}
	fake.Generate(n) // forgets the changes of an earlier measurement
	changed := fake.GenerateChanged(k, wm)

	dir := filepath.Join(o.dir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fail(err)
	}
	logFile, err := os.Create(filepath.Join(dir, "incremental.log"))
	if err != nil {
		return fail(err)
	}
	defer logFile.Close()
	logger := slog.New(slog.NewTextHandler(logFile, nil))
	api := clerk.NewAPI(clerk.APIConfig{SecretKey: secretKey, APIURL: fake.URL}, logger)
	// The stand-in's sort, before the clock starts.
	if _, err := api.ListUsersUpdated(ctx, 1, 0); err != nil {
		return fail(fmt.Errorf("warm-up list: %w", err))
	}

	before := fake.Stats()
	reqsBefore := len(fake.Requests())
	r := reconcile.New(st, api, logger, reconcile.Config{MaxDeleteShare: 0.1})
	start := time.Now()
	sum, err := r.RunIncremental(ctx)
	res.wall = time.Since(start)
	if rss, herr := proc.VmHWM(os.Getpid()); herr == nil {
		res.rss = rss
	}
	res.allRequests = fake.Stats().Requests - before.Requests
	res.requests, res.tooMany = countRequests(fake.Requests()[reqsBefore:], filepath.Join(dir, "clerk-requests.log"))
	if live, lerr := st.CountLiveUsers(ctx); lerr == nil {
		res.stored = live
	}
	out, _ := json.Marshal(sum)
	switch {
	case err != nil:
		res.outcome = "ERROR: " + err.Error() + " " + string(out)
	case !sum.Incremental || sum.Updated != len(changed):
		res.outcome = fmt.Sprintf("UNEXPECTED: %d changed, want them all updated: %s", len(changed), out)
	default:
		res.outcome = fmt.Sprintf("%d changed: %s", len(changed), out)
	}
	return res
}
