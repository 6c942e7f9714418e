// Command clerk-user-sync keeps an application's MongoDB users collection in sync with Clerk.
// Clerk's webhooks are verified and forwarded to Inngest, whose functions write each user to
// MongoDB (or to an embedded FerretDB, in dev mode or with MONGODB_URI=embedded).
//
// Run it with `go run .`; `go run . --help` lists every setting.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	if err := run(context.Background(), os.Args, os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "clerk-user-sync: %v\n", err)
		os.Exit(1)
	}
}

// run routes the command line to a command: with no arguments it starts the service
// (runServer) and blocks until ctx ends or SIGINT/SIGTERM arrives. It returns the command's
// error, which says what to set or fix.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	if len(args) < 2 {
		return runServer(ctx, stop, getenv, stdout, stderr)
	}
	switch args[1] {
	case "-h", "-help", "--help", "help":
		printHelp(stdout)
		return nil
	case "send":
		return runSend(ctx, args[2:], getenv, stdout, stderr)
	case "healthcheck":
		return runHealthcheck(ctx, getenv, stdout)
	case "backfill":
		return runBackfill(ctx, args[2:], getenv, stdout, stderr)
	case "reconcile":
		return runReconcile(ctx, args[2:], getenv, stdout, stderr)
	case "forget-clerk-instance":
		return runForgetInstance(ctx, args[2:], getenv, stdout, stderr)
	case "version", "-version", "--version":
		return runVersion(stdout)
	default:
		return fmt.Errorf("unknown command %q; run with --help to see the settings", strings.Join(args[1:], " "))
	}
}

// printHelp lists every setting with its default.
func printHelp(w io.Writer) {
	fmt.Fprintln(w, "clerk-user-sync: keeps a MongoDB users collection in sync with Clerk, through Inngest.")
	fmt.Fprint(w, `
Usage:
  clerk-user-sync              start the service
  clerk-user-sync send EVENT   sign a Clerk example event (user.created, user.updated,
                               user.deleted) or a JSON file and post it to the service
  clerk-user-sync healthcheck  exit 0 when the local service answers GET /readyz with 200
                               (for container health checks)
  clerk-user-sync backfill     import every Clerk user once, from the Backend API
                               (CLERK_SECRET_KEY) or --from-export FILE.csv; safe to rerun;
                               --allow-mass-delete lets this one import past the overlap check
  clerk-user-sync reconcile    ask Inngest to reconcile with Clerk now (sends the event
                               clerk-sync/reconcile.requested); --allow-mass-delete lets
                               those runs alone past the deletion cap and the overlap check
  clerk-user-sync forget-clerk-instance
                               forget which Clerk instance the database follows, so that
                               the next reconciliation or backfill records its key's
  clerk-user-sync version      print the version, VCS revision and Go version
  clerk-user-sync --help       this text

Settings (environment variables):
`)
	for _, s := range settingsHelp() {
		fmt.Fprintf(w, "  %-30s default: %s\n      %s\n", s.name, s.def, s.help)
	}
}
