package main

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"
)

// benchSwap moves a destination between two relay routes with the same id,
// and measures the time from the POST to the first data on the new route,
// and whether any packet was lost or sent twice across the two routes.
func benchSwap(ctx context.Context, cfg pathConfig, tw *tabwriter.Writer) error {
	r, err := startRig(ctx, cfg)
	if err != nil {
		return err
	}
	defer r.close()
	routes := []*watcher{}
	for _, x := range []string{"a", "b"} {
		w, err := watchRoute(r.relay.addr, "/out/bench/"+x)
		if err != nil {
			return err
		}
		defer w.close()
		routes = append(routes, w)
	}
	f := startFeed(ctx, r, "sw", true, cfg.rate)
	if _, err := r.post("/api/destinations", `{"stream":"sw","destination":"ws://`+r.relay.addr+`/in/bench/a","id":"sw"}`); err != nil {
		return err
	}
	waitFor(ctx, 5*time.Second, func() bool { return routes[0].count() > 0 })
	var took []time.Duration
	for i := range cfg.swaps {
		to := routes[(i+1)%2]
		before := to.count()
		start := time.Now()
		if _, err := r.post("/api/destinations", `{"stream":"sw","destination":"ws://`+r.relay.addr+`/in/bench/`+[]string{"a", "b"}[(i+1)%2]+`","id":"sw"}`); err != nil {
			return err
		}
		if !waitFor(ctx, 10*time.Second, func() bool { return to.count() > before }) {
			return fmt.Errorf("swap %d: no data on the new route", i)
		}
		took = append(took, time.Since(start))
		if err := sleep(ctx, 300*time.Millisecond); err != nil {
			return err
		}
	}
	// Stop the feed only once the last packet counted has arrived (or 5 s
	// passed): stopping cancels the POST, which drops what the HTTP client
	// still buffers, and that loss is the bench's, not the swap's.
	last := f.seq.Load()
	waitFor(ctx, 5*time.Second, func() bool { return routes[0].has(last) || routes[1].has(last) })
	f.stop()
	// Every packet written while the destination existed arrived once,
	// on one route or the other.
	seen := map[uint64]int{}
	var first uint64
	for _, w := range routes {
		w.mu.Lock()
		for _, s := range w.seqs {
			seen[s]++
			if first == 0 || s < first {
				first = s
			}
		}
		w.mu.Unlock()
	}
	lost, dup := 0, 0
	for s := first; s <= last; s++ {
		switch n := seen[s]; {
		case n == 0:
			lost++
		case n > 1:
			dup++
		}
	}
	row(tw, "hot swap: POST until data on the new route", took, fmt.Sprintf("%d swaps; %d packets lost, %d twice (of %d)", len(took), lost, dup, last-first+1))
	return nil
}
