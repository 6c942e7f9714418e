// Command inngest is the pinned Inngest server (github.com/inngest/inngest, the version go.mod
// names): its `dev`, `start` and `version` commands, unchanged, under a root command of ours.
//
// Ours differs from the server's own cmd package in one thing: the two gRPC ports of the
// Connect gateway and executor, fixed at 50052 and 50053 in this release (its configuration
// keys exist but nothing sets them), can be set with INNGEST_CONNECT_GATEWAY_GRPC_PORT and
// INNGEST_CONNECT_EXECUTOR_GRPC_PORT. Without them two servers on one machine share those ports,
// and one server's gateway may hand its runs to the other's executor. The tests give each
// server ports of its own. It also sends none of the CLI's usage telemetry.
//
// It exits with status 2 when a port setting is not a port number, 1 when the command fails.
package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"time"
	_ "time/tzdata" // as the server's own main: timezone data without the system's

	"github.com/inngest/inngest/cmd/devserver"
	"github.com/inngest/inngest/cmd/start"
	"github.com/inngest/inngest/cmd/version"
	connectconfig "github.com/inngest/inngest/pkg/config/connect"
	inngestversion "github.com/inngest/inngest/pkg/inngest/version"
	"github.com/mattn/go-isatty"
	"github.com/spf13/viper"
	"github.com/urfave/cli/v3"
)

func main() {
	// As the server's own main: UTC everywhere, whatever /etc/localtime says.
	if err := os.Setenv("TZ", "UTC"); err != nil {
		panic(err)
	}
	time.Local = time.UTC

	for env, key := range map[string]string{
		"INNGEST_CONNECT_GATEWAY_GRPC_PORT":  connectconfig.GatewayPortKey,
		"INNGEST_CONNECT_EXECUTOR_GRPC_PORT": connectconfig.ExecutorPortKey,
	} {
		v := os.Getenv(env)
		if v == "" {
			continue
		}
		port, err := strconv.ParseUint(v, 10, 16)
		if err != nil || port == 0 {
			fmt.Fprintf(os.Stderr, "inngest: %s=%q is not a port number (1-65535); unset it for the default\n", env, v)
			os.Exit(2)
		}
		viper.Set(key, uint32(port))
	}

	if !isatty.IsTerminal(os.Stdout.Fd()) {
		os.Setenv("LOG_HANDLER", "json") // as the server's own root: JSON logs when not on a terminal
	}
	app := &cli.Command{
		Name:    "inngest",
		Usage:   "The Inngest server v" + inngestversion.Print() + " (dev, start), with settable Connect gRPC ports",
		Version: inngestversion.Print(),
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "Output logs as JSON. Set to true if stdout is not a TTY."},
			&cli.BoolFlag{Name: "verbose", Usage: "Enable verbose logging."},
			&cli.StringFlag{Name: "log-level", Aliases: []string{"l"}, Value: "info", Usage: "Set the log level. One of: trace, debug, info, warn, error."},
		},
		// The server's logger reads LOG_HANDLER and LOG_LEVEL; the flags set them, as its root does.
		Before: func(ctx context.Context, cmd *cli.Command) (context.Context, error) {
			if cmd.Bool("json") {
				os.Setenv("LOG_HANDLER", "json")
			}
			if os.Getenv("LOG_LEVEL") == "" {
				switch {
				case cmd.IsSet("log-level"):
					os.Setenv("LOG_LEVEL", cmd.String("log-level"))
				case cmd.Bool("verbose"):
					os.Setenv("LOG_LEVEL", "debug")
				default:
					os.Setenv("LOG_LEVEL", "info")
				}
			}
			return ctx, nil
		},
		Commands: []*cli.Command{devserver.Command(), start.Command(), version.Command()},
	}
	if err := app.Run(context.Background(), os.Args); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
