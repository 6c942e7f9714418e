package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/inngest/inngestgo"

	"clerksync/reconcile"
)

// runReconcile is `clerk-user-sync reconcile`: it asks Inngest for a reconciliation now, by
// sending reconcile.RequestEvent with the service's Inngest settings, which starts one run of
// reconcile-users-with-clerk and one of reconcile-organizations-with-clerk. With
// --allow-mass-delete, those two runs, and no other, go past the deletion cap and the overlap
// check. With --incremental, the users' run is an incremental one (the users changed since the
// last run's watermark, deleting none) and the organizations' run does nothing. Each call sends
// a new event (no event id): running it again asks for another run.
// args are the arguments after "reconcile". It prints the event's id and where to watch the
// runs. It returns an error when the settings or arguments are wrong or Inngest refuses the
// event; with -h or --help it prints its usage and returns nil.
func runReconcile(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("reconcile", flag.ContinueOnError)
	fs.SetOutput(stderr)
	allowMassDelete := fs.Bool("allow-mass-delete", false, "for the runs this request starts only: delete more than RECONCILE_MAX_DELETE_SHARE, and write although Clerk's list shares fewer than half the database's live users (organizations); never past the Clerk instance check")
	incremental := fs.Bool("incremental", false, "ask for an incremental run of "+reconcile.FunctionID+" (the users changed in Clerk since the last run, as RECONCILE_INCREMENTAL_SCHEDULE's runs; it deletes nothing) instead of a full pass; "+reconcile.OrganizationsFunctionID+" then does nothing")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: clerk-user-sync reconcile [--allow-mass-delete] [--incremental]")
		fmt.Fprintln(stderr, "\nAsks Inngest to run reconcile-users-with-clerk and reconcile-organizations-with-clerk now, by sending")
		fmt.Fprintln(stderr, "the event "+reconcile.RequestEvent+" with the service's Inngest settings (INNGEST_EVENT_KEY, or INNGEST_DEV).")
		fmt.Fprintln(stderr, "The scheduled runs keep their safety checks; --allow-mass-delete lifts them for these two runs only.")
		fmt.Fprintln(stderr, "A run requested while one of the same function is still going is skipped: send again once it is over.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil // the usage is printed: asked for, not a failure
		}
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("reconcile takes no arguments, got %q", strings.Join(fs.Args(), " "))
	}
	s := &settings{getenv: getenv}
	logc := s.logging()
	inn := s.inngest()
	clerkc := s.clerk()
	if err := s.err(); err != nil {
		return fmt.Errorf("%w (reconcile sends its event with the service's settings)", err)
	}
	if clerkc.secretKey == "" {
		return errors.New("CLERK_SECRET_KEY is not set: without it the service runs no reconciliation, so nothing would take the event. " +
			"Run this command with the service's settings (in its container, for example)")
	}
	logger := newLogger(stderr, logc).With("command", "reconcile")
	client, err := inngestgo.NewClient(inngestOptions(inn, logger))
	if err != nil {
		return fmt.Errorf("inngest client: %w", err)
	}
	sendCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	id, err := keyRedactingClient{Client: client, eventKey: inn.eventKey}.Send(sendCtx, inngestgo.Event{
		Name: reconcile.RequestEvent,
		Data: map[string]any{reconcile.AllowMassDeleteField: *allowMassDelete, reconcile.IncrementalField: *incremental},
	})
	if err != nil {
		return fmt.Errorf("send %s to %s: %w; check INNGEST_EVENT_KEY (and INNGEST_BASE_URL or INNGEST_DEV)", reconcile.RequestEvent, inn.mode(), err)
	}
	checks := "with their safety checks"
	if *allowMassDelete {
		checks = "past the deletion cap and the overlap check, these two runs only"
	}
	fmt.Fprintf(stdout, "sent %s to %s: event id %s\n", reconcile.RequestEvent, inn.mode(), id)
	if *incremental {
		fmt.Fprintf(stdout, "it starts an incremental run of %s (the users changed since the last run; no deletion; a full pass when none has recorded a watermark yet, %s).\n", reconcile.FunctionID, checks)
	} else {
		fmt.Fprintf(stdout, "it starts one run of %s and one of %s, %s.\n", reconcile.FunctionID, reconcile.OrganizationsFunctionID, checks)
	}
	fmt.Fprintf(stdout, "watch them in %s: Runs (or Events -> %s), and in the service's log (\"reconciliation with Clerk done\").\n", dashboard(inn), reconcile.RequestEvent)
	fmt.Fprintln(stdout, "a run requested while one of the same function is still going is skipped (one at a time): then send again once it is over.")
	return nil
}

// dashboard names where c's Inngest shows the runs: the dev server's UI, the self-hosted
// server's, or Inngest Cloud's dashboard (in the environment INNGEST_ENV names, if any).
func dashboard(c inngestConfig) string {
	switch {
	case c.devURL != "":
		return "the dev server's UI at " + c.devURL
	case c.baseURL != "":
		return "the self-hosted Inngest's UI at " + c.baseURL
	case c.env != "":
		return "the Inngest dashboard (https://app.inngest.com, environment " + c.env + ")"
	}
	return "the Inngest dashboard (https://app.inngest.com)"
}
