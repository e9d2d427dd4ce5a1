// Command vwbench measures the figures docs/ARCHITECTURE.md sets targets for, each
// against its reference in the same run, and prints a small table. It
// measures; it never asserts.
//
//	vwbench all [-short]        every benchmark with its defaults (-short: smaller runs)
//	vwbench fanout [flags]      relay fan-out vs. the naive PreparedMessage loop
//	vwbench path [flags]        vw stream → vw relay: latency per hop, mute, hot swap, reconnect
//	vwbench churn [flags]       10,000 rule add/delete cycles: goroutines and heap after
//	vwbench codecs [flags]      MPEG-1 vs H.264: bit rate at equal quality (SSIM), encoder CPU
//	vwbench delay [flags]       an uplink capped at 75/50/25% of the stream's rate: delay behind live, audio share
//	vwbench viewers [flags]     a viewer's link capped at 75/50/25% of the stream's rate: delay behind live, audio share
//	vwbench firstframe [flags]  Chromium opening the player of a 4 s GOP stream: first picture, delay behind live
//	vwbench cluster [flags]     relays clustered: latency of a hop between relays, CPU remote vs local
//
// Servers under test run as child processes (vwbench serve-relay,
// vwbench serve-floor) so that their CPU time is theirs alone.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "vwbench:", err)
		os.Exit(1)
	}
}

const usage = `usage: vwbench COMMAND [flags]

commands:
  all           run every benchmark with its defaults; all -short: each with -short, a quicker run
  fanout        one stream to many websocket viewers: the relay against the naive floor
  path          vw stream → vw relay as processes: latency per hop, mute, hot swap, reconnect
  churn         rule add/delete cycles: goroutines and heap against the baseline
  codecs        MPEG-1 vs H.264 with the README's settings: bit rate at SSIM 0.95, encoder CPU
  delay         an uplink capped below the stream's rate: delay behind live, audio share, recovery
  viewers       a viewer's link capped below the stream's rate: delay behind live, audio share, recovery
  firstframe    the player page in Chromium, on a stream with a 4 s GOP: first picture and delay behind live
  cluster       vw relays clustered: latency A→B, CPU for remote vs local viewers, origin's CPU per watching relay
  serve-relay   (child) a relay built on crossbar.New, for fanout
  serve-floor   (child) one loop writing a PreparedMessage to every viewer, for fanout

Run "vwbench COMMAND -h" for a command's flags. Every benchmark takes -short.
`

// run is main without the process: testable.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command")
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "all":
		sub, err := allArgs(args, stderr)
		if err != nil {
			return err
		}
		for _, b := range benchmarks {
			if err := b.run(ctx, sub, getenv, stdout, stderr); err != nil {
				return fmt.Errorf("%s: %w", b.name, err)
			}
		}
		return nil
	case "serve-relay":
		return serveChild(ctx, "relay", args, stdin, stdout, stderr)
	case "serve-floor":
		return serveChild(ctx, "floor", args, stdin, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	for _, b := range benchmarks {
		if b.name == cmd {
			return b.run(ctx, args, getenv, stdout, stderr)
		}
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", cmd)
}

type benchFunc func(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error

// benchmarks are vwbench's commands that measure, in the order vwbench all
// runs them.
var benchmarks = []struct {
	name string
	run  benchFunc
}{
	{"fanout", runFanout},
	{"path", noEnv(runPath)},
	{"delay", noEnv(runDelay)},
	{"viewers", noEnv(runViewers)},
	{"churn", noEnv(runChurn)},
	{"codecs", noEnv(runCodecs)},
	{"firstframe", noEnv(runFirstFrame)},
	{"cluster", noEnv(runCluster)},
}

// noEnv is a benchmark that reads no environment.
func noEnv(f func(ctx context.Context, args []string, stdout, stderr io.Writer) error) benchFunc {
	return func(ctx context.Context, args []string, _ func(string) string, stdout, stderr io.Writer) error {
		return f(ctx, args, stdout, stderr)
	}
}

// allArgs parses all's flags and returns the arguments every benchmark
// gets.
func allArgs(args []string, stderr io.Writer) ([]string, error) {
	fs := newBenchFlags("all", stderr)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.short {
		return []string{"-short"}, nil
	}
	return nil, nil
}
