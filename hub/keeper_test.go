package hub

import (
	"encoding/binary"
	"sync"
	"sync/atomic"
	"testing"
)

// gopKeeper keeps the messages since the latest one whose sequence number
// is a multiple of every, as a keyframe cache does.
type gopKeeper struct {
	every uint64
	kept  []*Message
}

func (k *gopKeeper) Keep(m *Message) {
	if seqOf(m)%k.every == 0 {
		k.kept = k.kept[:0]
	}
	k.kept = append(k.kept, m)
}

func (k *gopKeeper) Replay(dst []*Message) []*Message { return append(dst, k.kept...) }

func seqOf(m *Message) uint64 { return binary.BigEndian.Uint64(m.Data) }

// joinReplay subscribes to "kept" with a replay and checks the replay: it
// starts at a kept boundary (a multiple of every), is contiguous, and comes
// once. It returns the subscription, the sequence number its queue must
// start with, and what was wrong, if anything.
func joinReplay(h *Hub, queue int, every uint64) (*Sub, uint64, string) {
	s := h.Subscribe("kept", SubConfig{Queue: queue, Replay: true})
	replay := s.Replay()
	if s.Replay() != nil {
		return s, 0, "a second Replay returned messages"
	}
	if len(replay) == 0 {
		return s, 0, ""
	}
	next := seqOf(replay[0])
	if next%every != 0 {
		return s, 0, "the replay does not start at a kept boundary"
	}
	for _, m := range replay {
		if seqOf(m) != next {
			return s, 0, "the replay is not contiguous"
		}
		next++
	}
	return s, next, ""
}

// TestKeeperSeam checks the promise of a Keeper: a subscriber that asks for
// a replay, joining while messages are published as fast as they can be,
// gets the kept messages and then its queue with no message missing and
// none twice at the seam. Joiners come and go all through the run, and one
// stays to the end to check the whole stream after its seam.
func TestKeeperSeam(t *testing.T) {
	const total, every, joiners = 400000, 50, 4
	h := New()
	h.KeepWith(func(name string) Keeper {
		if name == "kept" {
			return &gopKeeper{every: every}
		}
		return nil
	})
	pub := h.Join("kept")
	defer pub.Leave()
	plain := h.Join("plain")
	defer plain.Leave()
	if plain.Keeper() != nil {
		t.Fatal("a topic the keeper function declined has a Keeper")
	}

	join := func(queue int) (*Sub, uint64, string) { return joinReplay(h, queue, every) }
	var wg sync.WaitGroup
	var done atomic.Bool
	var seams atomic.Int64
	finished := make(chan struct{}) // nothing more will be published
	for range joiners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !done.Load() {
				s, next, bad := join(16)
				if bad != "" {
					t.Error(bad)
					s.Close()
					return
				}
				select {
				case m := <-s.C():
					if got := seqOf(m); got != next {
						t.Errorf("the queue after a replay starts at %d, want %d", got, next)
					}
					seams.Add(1)
				case <-finished:
				}
				s.Close()
			}
		}()
	}
	for i := range uint64(total) {
		pub.Publish(&Message{Data: binary.BigEndian.AppendUint64(nil, i)})
		if i == total/2 {
			// One more joiner, kept to the end: everything after its seam
			// arrives, in order.
			s, next, bad := join(total)
			if bad != "" {
				t.Fatal(bad)
			}
			defer s.Close()
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ; next < total; next++ {
					if got := seqOf(<-s.C()); got != next {
						t.Errorf("the stream after the seam gave %d, want %d", got, next)
						return
					}
				}
			}()
		}
	}
	done.Store(true)
	close(finished)
	wg.Wait()
	t.Logf("%d seams checked", seams.Load())
}

// TestReplayOnlyWhenAsked checks that a subscriber that does not ask for a
// replay gets none, and that one on a topic without a Keeper gets none.
func TestReplayOnlyWhenAsked(t *testing.T) {
	h := New()
	h.KeepWith(func(string) Keeper { return &gopKeeper{every: 2} })
	pub := h.Join("x")
	defer pub.Leave()
	pub.Publish(&Message{Data: binary.BigEndian.AppendUint64(nil, 0)})
	plain := h.Subscribe("x", SubConfig{})
	defer plain.Close()
	if r := plain.Replay(); r != nil {
		t.Fatalf("a subscriber that did not ask got a replay of %d", len(r))
	}
	asked := h.Subscribe("x", SubConfig{Replay: true})
	defer asked.Close()
	if r := asked.Replay(); len(r) != 1 {
		t.Fatalf("replay of %d messages, want the 1 kept", len(r))
	}

	h2 := New()
	s := h2.Subscribe("y", SubConfig{Replay: true})
	defer s.Close()
	if s.Replay() != nil {
		t.Fatal("a replay from a topic without a Keeper")
	}
}

// closingKeeper counts its Close calls.
type closingKeeper struct {
	gopKeeper
	closed int
}

func (k *closingKeeper) Close() { k.closed++ }

// TestKeeperClosedWithTopic checks that a Keeper with a Close method is
// closed once, when its topic goes away, and not before.
func TestKeeperClosedWithTopic(t *testing.T) {
	h := New()
	k := &closingKeeper{gopKeeper: gopKeeper{every: 1}}
	h.KeepWith(func(string) Keeper { return k })
	pub := h.Join("x")
	s := h.Subscribe("x", SubConfig{Replay: true})
	pub.Leave()
	if k.closed != 0 {
		t.Fatal("closed while a subscriber remains")
	}
	s.Close()
	if k.closed != 1 {
		t.Fatalf("closed %d times when the topic went, want once", k.closed)
	}
}
