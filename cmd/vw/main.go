// Command vw carries live MPEG-TS video out of labs whose hosts cannot accept
// connections. `vw stream` runs on the lab host, takes ffmpeg feeds and
// pushes streams out to relays; `vw relay` fans them out to browsers.
//
// This package owns the commands, their configuration (environment variables
// with the VW_ prefix, each with a flag of the same name in kebab case, the
// flag winning), the wiring of the other packages, and graceful shutdown.
package main

import (
	"context"
	"fmt"
	"io"
	stdlog "log"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "vw:", err)
		os.Exit(1)
	}
}

// run is main without the process: tests call it with their own arguments,
// output and context. Configuration comes from the environment and args.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	root := &cobra.Command{
		Use:           "vw",
		Short:         "Live video from labs that cannot accept connections, to browsers anywhere",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetArgs(args)
	root.AddCommand(newStreamCmd(stderr), newRelayCmd(stderr), newTokenCmd(stdout), newVersionCmd(stdout))
	return root.ExecuteContext(ctx)
}

// newLogger returns a logger at the named level writing to w, as text for
// people or as one JSON object a line for log collectors.
func newLogger(level, format string, w io.Writer) (*logrus.Entry, error) {
	lvl, err := logrus.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("log level %q: use trace, debug, info, warn, error, fatal or panic", level)
	}
	l := logrus.New()
	l.SetOutput(w)
	l.SetLevel(lvl)
	switch format {
	case "text":
		l.SetFormatter(&logrus.TextFormatter{FullTimestamp: true})
	case "json":
		l.SetFormatter(&logrus.JSONFormatter{TimestampFormat: time.RFC3339Nano})
	default:
		return nil, fmt.Errorf("log format %q: use text or json", format)
	}
	return logrus.NewEntry(l), nil
}

// httpErrorLog sends net/http's own complaints (TLS handshake errors, bad
// requests: one per misbehaving client) to the log at debug, with the
// component named, instead of unstructured lines on stderr.
func httpErrorLog(log *logrus.Entry) *stdlog.Logger {
	return stdlog.New(log.WithField("component", "http").WriterLevel(logrus.DebugLevel), "", 0)
}
