package hub

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vwlab/vw/internal/testutil"
)

func recv(t *testing.T, s *Sub) *Message {
	t.Helper()
	select {
	case m := <-s.C():
		return m
	case <-time.After(2 * time.Second):
		t.Fatal("no message within 2s")
		return nil
	}
}

func TestFanOutSharesOneBuffer(t *testing.T) {
	h := New()
	a := h.Subscribe("x", SubConfig{})
	b := h.Subscribe("x", SubConfig{})
	other := h.Subscribe("y", SubConfig{})
	defer a.Close()
	defer b.Close()
	defer other.Close()

	m := &Message{Data: []byte("hello")}
	h.Publish("x", m)
	ma, mb := recv(t, a), recv(t, b)
	if ma != m || mb != m || &ma.Data[0] != &m.Data[0] {
		t.Fatal("subscribers did not get the very message published")
	}
	select {
	case <-other.C():
		t.Fatal("a subscriber of another topic got the message")
	default:
	}
	st := h.Stats()
	if len(st) != 2 || st[0].Name != "x" || st[0].MsgsIn != 1 || st[0].MsgsOut != 2 || st[0].BytesOut != 10 {
		t.Fatalf("stats = %+v", st)
	}
}

func TestSenderDoesNotHearItself(t *testing.T) {
	h := New()
	a := h.Subscribe("bi", SubConfig{})
	b := h.Subscribe("bi", SubConfig{})
	defer a.Close()
	defer b.Close()
	h.Publish("bi", &Message{Data: []byte("from a"), From: a.ID()})
	if m := recv(t, b); string(m.Data) != "from a" {
		t.Fatalf("b got %q", m.Data)
	}
	select {
	case m := <-a.C():
		t.Fatalf("a heard its own message %q", m.Data)
	default:
	}
}

func TestSlowSubscriberDropsAndNeverBlocks(t *testing.T) {
	h := New()
	slow := h.Subscribe("x", SubConfig{Queue: 4, Policy: Drop})
	var onKick atomic.Int32
	kick := h.Subscribe("x", SubConfig{Queue: 4, Policy: Kick, OnKick: func() { onKick.Add(1) }})
	fast := h.Subscribe("x", SubConfig{Queue: 4, OnKick: func() { t.Error("OnKick of a subscriber never kicked") }})
	defer slow.Close()
	defer fast.Close()
	defer kick.Close()

	var got []byte
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for len(got) < 100 {
			m := <-fast.C()
			got = append(got, m.Data[0])
		}
	}()
	for i := range 100 {
		h.Publish("x", &Message{Data: []byte{byte(i)}})
		// Give the fast reader room; the slow ones never read.
		testutil.Eventually(t, 2*time.Second, func() bool { return len(fast.C()) < 4 }, "fast reader stuck")
	}
	wg.Wait()
	for i, b := range got {
		if int(b) != i {
			t.Fatalf("fast subscriber got message %d at %d: order or loss", b, i)
		}
	}
	if d := slow.Dropped(); d != 96 {
		t.Fatalf("slow subscriber dropped %d, want 96", d)
	}
	select {
	case <-kick.Done():
	default:
		t.Fatal("kick-policy subscriber with a full queue was not kicked")
	}
	if !kick.Kicked() || slow.Kicked() {
		t.Fatal("Kicked() wrong")
	}
	if n := onKick.Load(); n != 1 {
		t.Fatalf("OnKick called %d times, want once", n)
	}
	if st := h.Stats()[0]; st.Subscribers != 2 || st.Kicked != 1 {
		t.Fatalf("stats after kick = %+v", st)
	}
}

func TestTopicsGoAwayWhenLeft(t *testing.T) {
	h := New()
	p := h.Join("x")
	s := h.Subscribe("x", SubConfig{})
	s.Close()
	s.Close() // idempotent
	if h.Topics() != 1 {
		t.Fatal("topic vanished while a publisher holds it")
	}
	if st := h.Stats()[0]; st.Publishers != 1 || st.Subscribers != 0 {
		t.Fatalf("stats = %+v", st)
	}
	p.Leave()
	if h.Topics() != 0 {
		t.Fatalf("%d topics left after everyone left", h.Topics())
	}
	p.Publish(&Message{Data: []byte("late")}) // a stale handle must not panic
}

func TestConcurrentPublishSubscribe(t *testing.T) {
	h := New()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 500 {
				if (i+j)%2 == 0 {
					s := h.Subscribe("x", SubConfig{Queue: 1, Policy: Policy(j % 2)})
					s.Close()
				} else {
					h.Publish("x", &Message{Data: []byte{1}})
				}
			}
		}()
	}
	wg.Wait()
	if h.Topics() != 0 {
		t.Fatalf("%d topics left", h.Topics())
	}
}

func BenchmarkPublish(b *testing.B) {
	h := New()
	t := h.Join("x")
	defer t.Leave()
	var subs []*Sub
	for range 200 {
		s := h.Subscribe("x", SubConfig{Queue: 1})
		subs = append(subs, s)
		defer s.Close()
	}
	m := &Message{Data: make([]byte, 1316)}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		t.Publish(m)
		for _, s := range subs {
			<-s.C()
		}
	}
}

// TestDirectNeverOvertakesQueue checks the Direct hand-over: it is offered a
// message only while nothing queued is unconsumed, so that what a consumer
// handles, direct or queued, is in publishing order; and a message it
// refuses is queued (or dropped, with a full queue) as without Direct.
func TestDirectNeverOvertakesQueue(t *testing.T) {
	var got []byte // what the consumer handled, in order
	accept := true
	offered := 0
	var s *Sub
	h := New()
	s = h.Subscribe("x", SubConfig{Queue: 2, Policy: Drop, Direct: func(m *Message) bool {
		offered++
		if accept {
			got = append(got, m.Data[0])
		}
		return accept
	}})
	defer s.Close()
	other := h.Subscribe("x", SubConfig{Queue: 16})
	defer other.Close()
	consume := func(n int) {
		t.Helper()
		for range n {
			got = append(got, recv(t, s).Data[0])
		}
		s.Consumed(n)
	}
	pub := func(i byte) { h.Publish("x", &Message{Data: []byte{i}}) }

	for _, step := range []struct {
		name        string
		do          func()
		wantGot     string
		wantOffered int
	}{
		{"taken directly", func() { pub(0); pub(1) }, "\x00\x01", 2},
		{"refused: queued", func() { accept = false; pub(2) }, "\x00\x01", 3},
		// 3 must not overtake 2, even though Direct would take it now.
		{"not offered while 2 waits", func() { accept = true; pub(3) }, "\x00\x01", 3},
		{"queue full: dropped, not offered", func() { pub(4) }, "\x00\x01", 3},
		{"consumed: offered again", func() { consume(2); pub(5) }, "\x00\x01\x02\x03\x05", 4},
	} {
		step.do()
		if string(got) != step.wantGot || offered != step.wantOffered {
			t.Fatalf("%s: handled %v after %d offers, want %v after %d", step.name, got, offered, []byte(step.wantGot), step.wantOffered)
		}
	}
	if s.Dropped() != 1 {
		t.Fatalf("dropped %d, want 1 (message 4)", s.Dropped())
	}
	if st := h.Stats()[0]; st.MsgsIn != 6 || st.MsgsOut != 6+5 || st.Dropped != 1 {
		t.Fatalf("stats = %+v: want 6 in, 11 out (5 to the Direct subscriber, 6 to the other), 1 dropped", st)
	}
}

// fakeClock replaces a topic's clock: Direct hand-overs in these tests
// advance it by what they would cost.
type fakeClock struct{ t time.Duration }

func (c *fakeClock) now() time.Duration { return c.t }

// TestDirectBudget checks that one Publish stops offering Direct once it has
// spent DirectBudget on it, and queues the message for the rest.
func TestDirectBudget(t *testing.T) {
	h := New()
	tp := h.Join("x")
	defer tp.Leave()
	clock := &fakeClock{}
	tp.now = clock.now
	var took []int
	var subs []*Sub
	for i := range 6 {
		// Each hand-over costs 40% of the budget: offered at 0, 40% and
		// 80%, the fourth (at 120%) is over it.
		s := h.Subscribe("x", SubConfig{Direct: func(*Message) bool {
			clock.t += DirectBudget * 4 / 10
			took = append(took, i)
			return true
		}})
		defer s.Close()
		subs = append(subs, s)
	}
	tp.Publish(&Message{Data: []byte{1}})
	if len(took) != 3 || took[0] != 0 || took[1] != 1 || took[2] != 2 {
		t.Fatalf("Direct took the message for subscribers %v, want [0 1 2]", took)
	}
	for i, s := range subs {
		if queued, want := len(s.C()), min(max(i-2, 0), 1); queued != want {
			t.Fatalf("subscriber %d has %d queued, want %d", i, queued, want)
		}
	}
}

// TestDirectShare checks that a topic's publishers spend at most about
// DirectShare of their time in Direct, whatever the pace: a paced publisher
// with time to spare hands every message over directly, one that publishes
// faster than Direct could keep up with has the rest queued.
func TestDirectShare(t *testing.T) {
	for _, tc := range []struct {
		name      string
		gap, cost time.Duration // between messages; of one hand-over
		wantAll   bool
	}{
		{"paced: 2 ms of work every 33 ms", 33 * time.Millisecond, 2 * time.Millisecond, true},
		{"just within the share", 2 * time.Millisecond, 2 * time.Millisecond, true},
		{"flooding: 4 ms of work every 1 ms", time.Millisecond, 4 * time.Millisecond, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := New()
			tp := h.Join("x")
			defer tp.Leave()
			clock := &fakeClock{}
			tp.now = clock.now
			direct := 0
			s := h.Subscribe("x", SubConfig{Direct: func(*Message) bool {
				clock.t += tc.cost
				direct++
				return true
			}})
			defer s.Close()
			const n = 200
			queued := 0
			for range n {
				clock.t += tc.gap
				tp.Publish(&Message{Data: []byte{1}})
				if k := len(s.C()); k > 0 {
					for range k {
						<-s.C()
					}
					s.Consumed(k)
					queued += k
				}
			}
			if direct+queued != n {
				t.Fatalf("%d direct + %d queued, want %d messages", direct, queued, n)
			}
			if tc.wantAll && direct != n {
				t.Fatalf("%d of %d messages direct, want all", direct, n)
			}
			spent := time.Duration(direct) * tc.cost
			// What is owed never passes the budget by more than the one
			// hand-over that crossed it.
			if limit := time.Duration(float64(clock.t)*DirectShare) + DirectBudget + tc.cost; spent > limit || direct == 0 {
				t.Fatalf("%d messages direct: %v of %v spent in Direct, want some and at most %v", direct, spent, clock.t, limit)
			}
		})
	}
}
