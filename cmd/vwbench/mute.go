package main

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"
)

// benchMute measures how long a mute (and an unmute) POST takes to answer:
// it answers once the rule is in force, after the audio feed's current PES
// is complete. It also counts audio packets that left vw stream while a
// mute was in force (none should; see muteLeaks).
func benchMute(ctx context.Context, cfg pathConfig, tw *tabwriter.Writer) error {
	r, err := startRig(ctx, cfg)
	if err != nil {
		return err
	}
	defer r.close()
	if _, err := r.post("/api/streams", `{"stream":"room","feeds":["v","a"]}`); err != nil {
		return err
	}
	if _, err := r.post("/api/destinations", `{"stream":"room","destination":"ws://`+r.relay.addr+`/in/bench/room","id":"room"}`); err != nil {
		return err
	}
	w, err := watchRoute(r.relay.addr, "/out/bench/room")
	if err != nil {
		return err
	}
	defer w.close()
	v := startFeed(ctx, r, "v", true, cfg.rate)
	defer v.stop()
	a := startFeed(ctx, r, "a", false, 0)
	defer a.stop()
	if err := sleep(ctx, 1500*time.Millisecond); err != nil {
		return err
	}
	var mute, unmute []time.Duration
	var muted [][2]time.Time // each mute's answer, and its unmute's sending
	for range cfg.mutes {
		d, err := r.post("/api/streams", `{"stream":"room","feeds":["v"]}`)
		if err != nil {
			return err
		}
		mute = append(mute, d)
		answered := time.Now()
		if err := sleep(ctx, 150*time.Millisecond); err != nil {
			return err
		}
		muted = append(muted, [2]time.Time{answered, time.Now()})
		d, err = r.post("/api/streams", `{"stream":"room","feeds":["v","a"]}`)
		if err != nil {
			return err
		}
		unmute = append(unmute, d)
		if err := sleep(ctx, 150*time.Millisecond); err != nil {
			return err
		}
	}
	leaks, spans := muteLeaks(w, v, muted)
	row(tw, "mute: POST until in force", mute, fmt.Sprintf("%d mutes; answers after the audio PES in flight ends; %d audio packets while muted (%d of %d mutes checked)", len(mute), leaks, spans, len(muted)))
	row(tw, "unmute: POST until in force", unmute, "")
	return nil
}

// muteLeaks counts the audio packets that left vw stream while a mute was
// in force. The stream reaches the viewer in the order the muxer wrote it,
// so for each mute, every packet between the first video packet written to
// /ts/ after the mute's answer and the last video packet the viewer got
// before the unmute was sent left the muxer while the mute was in force:
// no audio packet may be among them. Transit times do not enter; a mute
// whose span holds no video packet (a machine too slow for 150 ms) is not
// checked, and spans says how many were.
func muteLeaks(w *watcher, v *feed, muted [][2]time.Time) (leaks, spans int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, m := range muted {
		from, to := -1, -1
		for i, mk := range w.marks {
			if w.kinds[mk.pid] != "video" {
				continue
			}
			if sent, ok := v.sent.Load(mk.seq); ok && from < 0 && sent.(time.Time).After(m[0]) {
				from = i
			}
			if mk.at.Before(m[1]) {
				to = i
			}
		}
		if from < 0 || to <= from {
			continue
		}
		spans++
		for _, mk := range w.marks[from:to] {
			if w.kinds[mk.pid] == "audio" {
				leaks++
			}
		}
	}
	return leaks, spans
}
