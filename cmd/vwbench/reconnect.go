package main

import (
	"context"
	"fmt"
	"net"
	"text/tabwriter"
	"time"
)

// benchReconnect kills the relay, leaves it down for each outage, brings it
// back on the same address and measures, on this process's clock, from the
// relay's return (the first moment its address accepts a TCP connection
// again, polled every millisecond) to the first data a viewer of the relay
// receives from vw stream. Outages up to 5 s run cfg.repeats times, each
// with a fresh vw stream: its client's outage would otherwise carry on from
// one run into the next.
func benchReconnect(ctx context.Context, cfg pathConfig, tw *tabwriter.Writer) error {
	for _, outage := range cfg.outages {
		n := max(1, cfg.repeats)
		if outage > 5*time.Second {
			n = 1
		}
		var took []time.Duration
		for range n {
			d, err := reconnectOnce(ctx, cfg, outage)
			if err != nil {
				return err
			}
			took = append(took, d)
		}
		runs := fmt.Sprintf("%d runs", n)
		if n == 1 {
			runs = "1 run"
		}
		fmt.Fprintf(tw, "reconnect after a %v outage\t%s\t\t%s\t%s; relay accepting TCP again → first data at a relay viewer; %s\n",
			outage, ms(pct(took, 50)), ms(pct(took, 100)), runs, redialNote(outage))
	}
	return nil
}

func reconnectOnce(ctx context.Context, cfg pathConfig, outage time.Duration) (time.Duration, error) {
	r, err := startRig(ctx, cfg)
	if err != nil {
		return 0, err
	}
	defer r.close()
	f := startFeed(ctx, r, "rc", true, cfg.rate)
	defer f.stop()
	if _, err := r.post("/api/destinations", `{"stream":"rc","destination":"ws://`+r.relay.addr+`/in/bench/rc","id":"rc"}`); err != nil {
		return 0, err
	}
	w, err := watchRoute(r.relay.addr, "/out/bench/rc")
	if err != nil {
		return 0, err
	}
	waitFor(ctx, 10*time.Second, func() bool { return w.count() > 0 })
	w.close()
	r.relay.kill()
	if err := sleep(ctx, outage); err != nil {
		return 0, err
	}
	relay, err := launchVW(cfg.vw, r.relay.addr, "relay")
	if err != nil {
		return 0, err
	}
	r.relay = relay
	var back time.Time
	if !waitFor(ctx, 10*time.Second, func() bool {
		c, err := net.DialTimeout("tcp", relay.addr, 50*time.Millisecond)
		if err != nil {
			return false
		}
		back = time.Now()
		c.Close()
		return true
	}) {
		return 0, fmt.Errorf("the relay did not come back on %s", relay.addr)
	}
	// The viewer may join a moment after vw stream has: it then sees the
	// next message, milliseconds later at the bench's rate.
	if !waitFor(ctx, 5*time.Second, func() bool {
		w, err = watchRoute(relay.addr, "/out/bench/rc")
		return err == nil
	}) {
		return 0, fmt.Errorf("cannot watch the relay that came back: %w", err)
	}
	defer w.close()
	var first time.Time
	if !waitFor(ctx, 15*time.Second, func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		first = w.first
		return !first.IsZero()
	}) {
		return 0, fmt.Errorf("no data within 15 s of the relay's return after a %v outage", outage)
	}
	return first.Sub(back), nil
}

// redialNote says what bounds the figure: the redial step vw stream's
// client is on when the relay returns after an outage of d. It redials
// every 250 ms (jittered down to 125 ms) for the first 5 s of an outage,
// then doubles from 250 ms to 10 s.
func redialNote(d time.Duration) string {
	if d <= 5*time.Second {
		return "bound: one redial step, 250 ms"
	}
	waited, step := 5*time.Second, 250*time.Millisecond
	for waited+step/2 < d && step < 10*time.Second {
		waited += step / 2 // the least a jittered step waits
		step = min(step*2, 10*time.Second)
	}
	return fmt.Sprintf("bound: the redial step then, at most %v", step)
}
