package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/vwlab/vw/agg"
	"github.com/vwlab/vw/hub"
	"github.com/vwlab/vw/rules"
	"github.com/vwlab/vw/rwc"
)

// runChurn adds and deletes rules many times through the rules service that
// vw stream's REST routes and control API use, in this process so that
// goroutines and heap can be counted, and reports what is left afterwards
// against the baseline before.
func runChurn(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newBenchFlags("churn", stderr)
	cycles := fs.Int("cycles", 10000, "add/delete cycles (a stream rule and a destination rule each)")
	fs.Short("cycles", "2000")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := logrus.New()
	log.SetOutput(io.Discard)
	l := logrus.NewEntry(log)
	dir, err := os.MkdirTemp("", "vwbench-churn-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	h := hub.New()
	a, err := agg.New(agg.Config{}, h, l)
	if err != nil {
		return err
	}
	r, err := rwc.New(rwc.Config{Recordings: dir, Resolve: rules.Resolver(a)}, h, l)
	if err != nil {
		return err
	}
	rs, err := rules.New(rules.Config{}, a, r, l)
	if err != nil {
		return err
	}
	defer rs.Close()

	goBase, heapBase := settle()
	start := time.Now()
	for i := range *cycles {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		name := fmt.Sprintf("s%d", i%50)
		if _, err := rs.SetStream(ctx, rules.StreamRule{Stream: name, Feeds: []string{"video0", "audio0"}}); err != nil {
			return err
		}
		// A destination that never connects: port 1 refuses at once, so
		// the client sits in backoff, as one would while a relay is down.
		if _, err := rs.SetDestination(rwc.Rule{Stream: name, Destination: "ws://127.0.0.1:1/in/x", ID: name}, false); err != nil {
			return err
		}
		if err := rs.DeleteDestination(name, false); err != nil {
			return err
		}
		if err := rs.DeleteStream(name); err != nil {
			return err
		}
	}
	took := time.Since(start)
	goAfter, heapAfter := settle()
	fmt.Fprintf(stdout, "\nchurn: %d cycles of add stream + add destination + delete both, in %v (%.0f µs a cycle)\n", *cycles, took.Round(time.Millisecond), float64(took.Microseconds())/float64(*cycles))
	fmt.Fprintf(stdout, "  goroutines: %d before, %d after\n", goBase, goAfter)
	fmt.Fprintf(stdout, "  live heap:  %.1f MiB before, %.1f MiB after\n", float64(heapBase)/(1<<20), float64(heapAfter)/(1<<20))
	fmt.Fprintf(stdout, "  hub topics left: %d\n", h.Topics())
	return nil
}

// settle waits for goroutines that are ending to end, collects garbage, and
// returns the goroutine count and the live heap.
func settle() (int, uint64) {
	n := runtime.NumGoroutine()
	for range 100 {
		time.Sleep(20 * time.Millisecond)
		m := runtime.NumGoroutine()
		if m == n {
			break
		}
		n = m
	}
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return runtime.NumGoroutine(), ms.HeapAlloc
}
