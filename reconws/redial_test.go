package reconws

import (
	"sync"
	"testing"
	"time"

	"github.com/vwlab/vw/internal/testrelay"
	"github.com/vwlab/vw/internal/testutil"
)

// fakeClock runs a client's redial schedule in a test: it moves only when
// the test fires the timer the client waits on, or advances it.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	timer *fakeTimer // the latest the client asked for
	asked int        // timers asked for so far
}

type fakeTimer struct {
	d       time.Duration
	c       chan time.Time
	stopped bool
	fired   bool
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Date(2025, 6, 1, 9, 0, 0, 0, time.UTC)} }

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeClock) Timer(d time.Duration) (<-chan time.Time, func() bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := &fakeTimer{d: d, c: make(chan time.Time, 1)}
	f.timer, f.asked = t, f.asked+1
	return t.c, func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		was := !t.stopped && !t.fired
		t.stopped = true
		return was
	}
}

// Advance moves the clock on by d, as a connection lives.
func (f *fakeClock) Advance(d time.Duration) {
	f.mu.Lock()
	f.now = f.now.Add(d)
	f.mu.Unlock()
}

// next waits until the client waits on a timer it has not been given and
// returns that timer's duration.
func (f *fakeClock) next(t *testing.T) time.Duration {
	t.Helper()
	var d time.Duration
	testutil.Eventually(t, wait5, func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.timer == nil || f.timer.fired || f.timer.stopped {
			return false
		}
		d = f.timer.d
		return true
	}, "the client never waited to redial")
	return d
}

// fire moves the clock to the end of the pending timer and fires it.
func (f *fakeClock) fire() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(f.timer.d)
	f.timer.fired = true
	f.timer.c <- f.now
}

// redialUntil fires the client's redial timers, each dial failing, until
// the outage has lasted at least out on the client's clock; it returns how
// long it has lasted and checks that every wait followed the schedule and
// was followed by one dial.
func redialUntil(t *testing.T, c *Client, clk *fakeClock, from, out time.Duration, failures uint64) (time.Duration, uint64) {
	t.Helper()
	exp := 0 // exponential steps so far, if from was in the fast phase
	for from < out {
		d := clk.next(t)
		lo, hi := DefaultBackoffMin/2, DefaultBackoffMin
		if from >= 5*time.Second {
			hi = Step(DefaultBackoffMin, DefaultBackoffMax, exp)
			lo = hi / 2
			exp++
		}
		if d < lo || d > hi {
			t.Fatalf("%v into the outage: waited %v before redialling, want %v..%v", from, d, lo, hi)
		}
		clk.fire()
		from += d
		failures++
		// The dial fails before the relay can come back.
		testutil.Eventually(t, wait5, func() bool { return c.Stats().Failures == failures }, "dial %d did not fail", failures)
	}
	return from, failures
}

// relayGone connects a client on a fake clock to a relay and stops the
// relay: an outage begins. It returns the relay's address, for a relay to
// come back at.
func relayGone(t *testing.T) (addr string, c *Client, clk *fakeClock) {
	t.Helper()
	r := testrelay.New(t, testrelay.Options{})
	clk = newFakeClock()
	c = start(t, Config{URL: r.URL(), clock: clk})
	waitReady(t, c)
	r.Stop()
	return r.Addr(), c, clk
}

// A destination whose relay is down redials every 250 ms (jittered) for
// the first 5 s of the outage, then backs off, doubling to 10 s and staying
// there: every wait asked of the client's clock, and every dial counted.
func TestRedialSchedule(t *testing.T) {
	clk := newFakeClock()
	c := start(t, Config{URL: "ws://" + closedAddr(t) + "/in/x", clock: clk})
	testutil.Eventually(t, wait5, func() bool { return c.Stats().Failures == 1 }, "the first dial did not fail")
	out, failures := redialUntil(t, c, clk, 0, time.Minute, 1)
	// 20 to 40 fast dials in the first 5 s, then 0.25+0.5+…+8 s and 10 s
	// steps: the minute holds well over 25 dials and the last waits are
	// the 10 s cap.
	if failures < 25 {
		t.Errorf("%d dials in %v of outage, want at least 25", failures, out)
	}
	if d := clk.next(t); d < 5*time.Second {
		t.Errorf("after a minute of outage the client waits %v, want the 10 s cap (jittered down to 5 s at most)", d)
	}
}

// A relay that returns within 5 s of going away is dialled at most one
// fast step (250 ms) after its return, and that dial gets through; later
// the step is what backoff has grown to, at most 10 s. The relay comes back
// at the worst moment: just as a dial failed.
func TestRelayBackWithinOneFastStep(t *testing.T) {
	for _, tc := range []struct {
		outage, most time.Duration
	}{
		{300 * time.Millisecond, 250 * time.Millisecond},
		{1500 * time.Millisecond, 250 * time.Millisecond},
		{4 * time.Second, 250 * time.Millisecond},
		{5 * time.Second, 250 * time.Millisecond},
		{20 * time.Second, 10 * time.Second},
	} {
		t.Run(tc.outage.String(), func(t *testing.T) {
			addr, c, clk := relayGone(t)
			out, failures := redialUntil(t, c, clk, 0, tc.outage, 0)
			r2 := testrelay.New(t, testrelay.Options{Addr: addr})
			d := clk.next(t)
			if d > tc.most {
				t.Errorf("relay back after %v of outage: next dial %v later, want at most %v", out, d, tc.most)
			}
			clk.fire()
			testutil.Eventually(t, wait5, func() bool { return c.Stats().Connects == 2 }, "no reconnect: %+v", c.Stats())
			if got := c.Stats().Failures; got != failures {
				t.Errorf("%d failed dials, want %d: the first dial after the relay's return failed", got, failures)
			}
			if !c.Send([]byte("again"), false) {
				t.Fatal("Send refused after reconnect")
			}
			testutil.Eventually(t, wait5, func() bool { return r2.Count() == 1 }, "no data after reconnect")
		})
	}
}

// Only a connection that lived 5 s ends an outage: the next outage starts
// at the fast step again. One that lived less continues the outage it
// interrupted, backing off, so that a relay accepting and dropping at once
// is not hammered every 250 ms. The 5 s is the promise (README): this fails
// if DefaultResetAfter grows.
func TestFastAgainAfterLivedConnection(t *testing.T) {
	for _, tc := range []struct {
		lived time.Duration
		fast  bool
	}{
		{5 * time.Second, true},
		{5*time.Second - time.Millisecond, false},
	} {
		t.Run(tc.lived.String(), func(t *testing.T) {
			addr, c, clk := relayGone(t)
			// Well into backoff: the steps are 2 s and more.
			out, _ := redialUntil(t, c, clk, 0, 10*time.Second, 0)
			r2 := testrelay.New(t, testrelay.Options{Addr: addr})
			clk.next(t)
			clk.fire()
			testutil.Eventually(t, wait5, func() bool { return c.Stats().Connects == 2 }, "no reconnect after %v: %+v", out, c.Stats())
			clk.Advance(tc.lived)
			r2.Stop()
			d := clk.next(t)
			if fast := d <= DefaultBackoffMin; fast != tc.fast {
				t.Errorf("connection lived %v, then the client waited %v to redial: fast=%v, want %v", tc.lived, d, fast, tc.fast)
			}
		})
	}
}
