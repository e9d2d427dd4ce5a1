package ts

import (
	"bytes"
	"os"
	"testing"
)

func TestKeyframe(t *testing.T) {
	sc := func(code ...byte) []byte { return append([]byte{0, 0, 1}, code...) }
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	seq := sc(0xb3, 0x04, 0x00, 0x40, 0x13)
	gop := sc(0xb8, 0x00, 0x08, 0x00, 0x00)
	pic := sc(0x00, 0x00, 0x57, 0xff)
	nal := func(typ byte, body ...byte) []byte { return cat([]byte{0}, sc(0x60|typ), body) }
	aud, sps, pps, sei := nal(9, 0xf0), nal(7, 0x64, 0x00, 0x0a), nal(8, 0xeb, 0xe3), nal(6, 0x05, 0xff)
	idr, slice := nal(5, 0x88, 0x84), nal(1, 0x9a, 0x24)
	for _, tc := range []struct {
		name         string
		codec        Family
		es           []byte
		key, decided bool
	}{
		{"mpeg: sequence header, GOP, picture", FamilyMPEG1, cat(seq, gop, pic), true, true},
		{"mpeg: user data before the sequence header", FamilyMPEG1, cat(sc(0xb2, 'x'), seq), true, true},
		{"mpeg: a picture alone", FamilyMPEG1, pic, false, true},
		{"mpeg: a GOP header, then a picture", FamilyMPEG1, cat(gop, pic), false, true},
		{"mpeg: a slice first", FamilyMPEG1, sc(0x01, 0x12), false, true},
		{"mpeg: a start code without its code yet", FamilyMPEG1, []byte{0, 0, 1}, false, false},
		{"mpeg: a sequence header's start code cut short", FamilyMPEG1, []byte{0xff, 0, 0}, false, false},
		{"mpeg: nothing", FamilyMPEG1, nil, false, false},
		{"mpeg: filler up to the probe's end", FamilyMPEG1, bytes.Repeat([]byte{0xff}, MaxKeyframeProbe), false, true},
		{"mpeg: a sequence header past the probe's end", FamilyMPEG1, cat(bytes.Repeat([]byte{0xff}, MaxKeyframeProbe), seq), false, true},
		{"h264: AUD, SPS, PPS, SEI, IDR", FamilyH264, cat(aud, sps, pps, sei, idr), true, true},
		{"h264: SPS and PPS, IDR", FamilyH264, cat(sps, pps, idr), true, true},
		{"h264: IDR without parameter sets", FamilyH264, cat(aud, idr), false, true},
		{"h264: IDR without a PPS", FamilyH264, cat(sps, idr), false, true},
		{"h264: a non-IDR slice", FamilyH264, cat(aud, slice), false, true},
		{"h264: parameter sets, slice still to come", FamilyH264, cat(aud, sps, pps, sei), false, false},
		{"h264: a 4-byte start code", FamilyH264, cat([]byte{0, 0, 0, 1, 0x67, 0x64}, pps, idr), true, true},
		{"unknown codec", FamilyNone, cat(seq, pic), false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key, decided := Keyframe(tc.codec, tc.es)
			if key != tc.key || decided != tc.decided {
				t.Fatalf("Keyframe = %v, %v; want %v, %v", key, decided, tc.key, tc.decided)
			}
		})
	}
}

// videoPES splits the video PID's packets of a recording into PES packets:
// the index of each one's first packet, and its elementary stream data,
// reassembled independently of KeyframeProbe.
func videoPES(t *testing.T, in []byte, pid uint16) (starts []int, es [][]byte) {
	t.Helper()
	var cur []byte
	flush := func() {
		if cur == nil {
			return
		}
		h, err := ParsePES(cur)
		if err != nil {
			t.Fatalf("PES %d: %v", len(es), err)
		}
		es = append(es, cur[h.DataOffset:])
	}
	for i := 0; i < len(in); i += PacketSize {
		p := in[i : i+PacketSize]
		if PID(p) != pid {
			continue
		}
		off, _ := PayloadOffset(p)
		if PayloadUnitStart(p) {
			flush()
			cur = nil
			starts = append(starts, i/PacketSize)
		}
		if starts != nil {
			cur = append(cur, p[off:]...)
		}
	}
	flush()
	return starts, es
}

// TestKeyframeProbeFFmpeg follows the video of real ffmpeg recordings and
// checks that the probe calls keyframes exactly the PES packets that begin
// with what a decoder starts from (found here by a plain search), once
// each, and for the x264 one also that it needed more than a packet.
func TestKeyframeProbeFFmpeg(t *testing.T) {
	for _, tc := range []struct {
		file  string
		codec Family
		gop   int
	}{
		{"testdata/mpeg1-g5.ts", FamilyMPEG1, 5},
		{"testdata/h264-g10.ts", FamilyH264, 10},
		{"testdata/av.ts", FamilyMPEG1, 12},
	} {
		t.Run(tc.file, func(t *testing.T) {
			in, err := os.ReadFile(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			starts, es := videoPES(t, in, 0x100)
			var k KeyframeProbe
			k.Reset(tc.codec)
			verdicts := map[int]Verdict{} // by PES
			late := 0
			pes := -1
			for i := 0; i < len(in); i += PacketSize {
				p := in[i : i+PacketSize]
				if PID(p) != 0x100 {
					continue
				}
				if PayloadUnitStart(p) {
					pes++
				}
				v := k.Packet(p)
				if v == Pending {
					continue
				}
				if _, dup := verdicts[pes]; dup {
					t.Fatalf("PES %d got a second verdict", pes)
				}
				verdicts[pes] = v
				if i/PacketSize != starts[pes] {
					late++
				}
			}
			keys := 0
			for n, data := range es {
				want := NotKey
				switch tc.codec {
				case FamilyMPEG1:
					if bytes.HasPrefix(data, []byte{0, 0, 1, 0xb3}) {
						want = Key
					}
				case FamilyH264:
					if bytes.Contains(data, []byte{0, 0, 1, 0x65}) {
						want = Key
					}
				}
				if verdicts[n] != want {
					t.Errorf("PES %d (packet %d): verdict %d, want %d", n, starts[n], verdicts[n], want)
				}
				if want == Key {
					keys++
					if n%tc.gop != 0 {
						t.Errorf("PES %d is a keyframe, but the GOP is %d", n, tc.gop)
					}
				}
			}
			if want := (len(es) + tc.gop - 1) / tc.gop; keys != want {
				t.Errorf("%d keyframes in %d pictures, want %d", keys, len(es), want)
			}
			if tc.codec == FamilyH264 && late == 0 {
				t.Error("every verdict came at a PES's first packet: x264's SEI should have put its IDR slice further on")
			}
			t.Logf("%d pictures, %d keyframes, %d verdicts after the first packet", len(es), keys, late)
		})
	}
}

// TestKeyframeProbeDamage checks the verdicts for PES packets that do not
// read cleanly: a damaged packet before the verdict ends the PES as no
// keyframe, a header split over two packets still gets its verdict, and a
// packet without a PES in progress says nothing.
func TestKeyframeProbeDamage(t *testing.T) {
	es := append([]byte{0, 0, 1, 0xb3, 1, 2, 3}, bytes.Repeat([]byte{0xee}, 400)...)
	pes := append([]byte{0, 0, 1, 0xe0, 0, 0, 0x80, 0x80, 5, 0x21, 0, 1, 0, 1}, es...)
	var k KeyframeProbe

	k.Reset(FamilyMPEG1)
	if v := k.Packet(packetOf(false, pes[100:284])); v != Pending {
		t.Errorf("a packet with no PES in progress: verdict %d", v)
	}
	if v := k.Packet(packetOf(true, pes[:184])); v != Key {
		t.Errorf("a keyframe's first packet: verdict %d, want Key", v)
	}
	if v := k.Packet(packetOf(false, pes[184:368])); v != Pending {
		t.Errorf("the rest of a PES already judged: verdict %d", v)
	}

	k.Reset(FamilyMPEG1)
	if v := k.Packet(packetOf(true, pes[:5])); v != Pending {
		t.Errorf("half a PES header: verdict %d", v)
	}
	if v := k.Packet(packetOf(false, pes[5:189])); v != Key {
		t.Errorf("the header's second half and the sequence header: verdict %d, want Key", v)
	}

	k.Reset(FamilyMPEG1)
	if v := k.Packet(packetOf(true, pes[:12])); v != Pending {
		t.Errorf("a PES header alone: verdict %d", v)
	}
	bad := packetOf(false, pes[12:196])
	bad[1] |= 0x80 // transport_error_indicator
	if v := k.Packet(bad); v != NotKey {
		t.Errorf("a damaged packet before the verdict: verdict %d, want NotKey", v)
	}
}

// packetOf builds one packet on PID 0x100 carrying payload, padded with
// adaptation stuffing.
func packetOf(start bool, payload []byte) []byte {
	p := make([]byte, PacketSize)
	p[0], p[1], p[2] = SyncByte, 0x01, 0x00
	if start {
		p[1] |= 0x40
	}
	room := PacketSize - 4
	if len(payload) >= room {
		p[3] = 0x10
		copy(p[4:], payload[:room])
		return p
	}
	p[3] = 0x30
	af := room - len(payload) - 1 // adaptation field length
	p[4] = byte(af)
	if af > 0 {
		p[5] = 0
		for i := 6; i < 5+af; i++ {
			p[i] = 0xff
		}
	}
	copy(p[5+af:], payload)
	return p
}

// FuzzKeyframe checks Keyframe on any bytes: a decided answer never changes
// as the data grows, and KeyframeProbe, fed the same data as a PES cut into
// packets of varied sizes, gives the same verdict, once, at the packet
// where the data decides it.
func FuzzKeyframe(f *testing.F) {
	f.Add(byte(FamilyMPEG1), []byte{0, 0, 1, 0xb3, 4, 0, 0x40, 0x13, 0, 0, 1, 0xb8, 0, 0, 1, 0}, byte(3))
	f.Add(byte(FamilyMPEG1), []byte{0, 0, 1, 0, 0, 0x57, 0xff, 0xf8}, byte(180))
	f.Add(byte(FamilyH264), []byte{0, 0, 0, 1, 0x09, 0xf0, 0, 0, 1, 0x67, 0x64, 0, 0, 1, 0x68, 0xeb, 0, 0, 1, 0x06, 5, 0, 0, 1, 0x65, 0x88}, byte(7))
	f.Add(byte(FamilyH264), []byte{0, 0, 1, 0x09, 0xf0, 0, 0, 1, 0x41, 0x9a}, byte(0))
	f.Fuzz(func(t *testing.T, codec byte, es []byte, step byte) {
		c := Family(codec % 3)
		key, decided := Keyframe(c, es)
		for _, k := range []int{len(es) / 2, int(step), len(es) - 1} {
			if k < 0 || k > len(es) {
				continue
			}
			if pk, pd := Keyframe(c, es[:k]); pd && (pk != key || !decided) {
				t.Fatalf("the first %d bytes decide %v; all %d bytes give %v, %v", k, pk, len(es), key, decided)
			}
		}

		hdr := []byte{0, 0, 1, 0xe0, 0, 0, 0x80, 0, 0}
		window := MaxKeyframeProbe - len(hdr)
		want := Pending
		if wk, wd := Keyframe(c, es[:min(len(es), window)]); wk {
			want = Key
		} else if wd || len(es) >= window {
			want = NotKey
		}
		var probe KeyframeProbe
		probe.Reset(c)
		got := Pending
		pes := append(hdr, es...)
		for i, first := 0, true; first || len(pes) > 0; i, first = i+1, false {
			n := min(len(pes), 1+(int(step)+i*37)%(PacketSize-4))
			v := probe.Packet(packetOf(first, pes[:n]))
			pes = pes[n:]
			if v == Pending {
				continue
			}
			if got != Pending {
				t.Fatalf("a second verdict %d after %d", v, got)
			}
			got = v
		}
		if got != want {
			t.Fatalf("probe verdict %d, want %d (Keyframe gives %v, %v for %d bytes)", got, want, key, decided, len(es))
		}
	})
}
