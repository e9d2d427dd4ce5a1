package ts

// Keyframes: where a decoder joining a stream can start. The codec family
// (codec.go) says how a video stream is coded: FamilyMPEG1 is MPEG-1 or
// MPEG-2 video, FamilyH264 is H.264 in Annex B byte stream form. The answer
// comes from the elementary stream itself, not from the adaptation field's
// random_access_indicator, which muxers set loosely (and feeds may not set
// at all): a decoder needs what the bytes say it needs.
//
//   - MPEG-1/2 video: jsmpeg starts only at a sequence header, which ffmpeg
//     writes at the start of the PES of each GOP's first picture. A PES is a
//     keyframe when a sequence header comes before its first picture.
//   - H.264: a decoder starts at an IDR access unit, and only with the SPS
//     and PPS it refers to. A PES is a keyframe when its first slice is IDR
//     and an SPS and a PPS come before it (ffmpeg and x264 repeat them at
//     every IDR; a stream that does not cannot be joined anywhere).

// MaxKeyframeProbe bounds how many bytes of a PES Keyframe and
// KeyframeProbe look at. An H.264 keyframe's parameter sets and SEI come
// before its first slice (x264 writes about 700 bytes of them); a PES whose
// first picture or slice has not begun by then is taken for no keyframe.
const MaxKeyframeProbe = 8 << 10

// Keyframe reports whether es, the first bytes of a video PES's elementary
// stream data (after the PES header), starts a keyframe of family f. decided
// is false while es ends before the answer is known; once es holds
// MaxKeyframeProbe bytes the answer is always decided. An answer, once
// decided, never changes as es grows.
func Keyframe(f Family, es []byte) (key, decided bool) {
	if len(es) > MaxKeyframeProbe {
		es = es[:MaxKeyframeProbe]
	}
	var sps, pps bool
	for i := 0; i+3 < len(es); i++ {
		if es[i+2] > 1 {
			i += 2 // no start code can begin at i, i+1 or i+2
			continue
		}
		if es[i] != 0 || es[i+1] != 0 || es[i+2] != 1 {
			continue
		}
		code := es[i+3]
		switch f {
		case FamilyMPEG1:
			switch {
			case code == 0xb3: // sequence header
				return true, true
			case code <= 0xaf: // a picture (0x00) or a slice
				return false, true
			}
		case FamilyH264:
			switch code & 0x1f {
			case 7:
				sps = true
			case 8:
				pps = true
			case 5: // a slice of an IDR picture
				return sps && pps, true
			case 1, 2, 3, 4: // a slice of any other picture
				return false, true
			}
		default:
			return false, true
		}
		i += 3
	}
	return false, len(es) >= MaxKeyframeProbe || f == FamilyNone
}

// Verdict is what KeyframeProbe knows of the PES in progress.
type Verdict uint8

// Verdicts of KeyframeProbe.Packet.
const (
	// Pending: nothing new is known (no PES in progress, more of it is
	// needed, or its verdict was given already).
	Pending Verdict = iota
	// Key: the PES in progress starts a keyframe.
	Key
	// NotKey: the PES in progress does not start a keyframe.
	NotKey
)

// KeyframeProbe follows the packets of one video PID and tells, for each
// PES that starts on it, whether it starts a keyframe, as soon as the
// packets seen say so: usually at the PES's first packet, for H.264 with
// long parameter sets a few packets later. It copies at most
// MaxKeyframeProbe bytes of each PES and allocates nothing.
type KeyframeProbe struct {
	family Family
	buf    [MaxKeyframeProbe]byte
	n      int  // bytes of the PES in progress in buf
	open   bool // a PES is in progress and its verdict not given
}

// Reset forgets the PES in progress and sets the codec family of the PID
// (FamilyOf its PMT stream type, for a type that IsVideo).
func (k *KeyframeProbe) Reset(f Family) {
	k.family, k.n, k.open = f, 0, false
}

// Packet feeds the next packet of the PID. It returns Key or NotKey once,
// for the PES that started at the latest packet with payload_unit_start,
// when that is known; Pending otherwise. A packet that cannot be read
// (malformed, damaged or scrambled) ends the PES in progress with NotKey if
// its verdict was still to come.
func (k *KeyframeProbe) Packet(p []byte) Verdict {
	if !k.open && !PayloadUnitStart(p) {
		return Pending // the rest of a PES already judged: most packets
	}
	off, ok := PayloadOffset(p)
	if !ok || TransportError(p) || Scrambled(p) {
		return k.give(NotKey)
	}
	if PayloadUnitStart(p) {
		k.n, k.open = 0, true
	}
	if !k.open || !HasPayload(p) {
		return Pending
	}
	k.n += copy(k.buf[k.n:], p[off:PacketSize])
	h, err := ParsePES(k.buf[:k.n])
	switch {
	case (err == ErrShort || err == nil && h.DataOffset > k.n) && k.n < len(k.buf):
		return Pending // the PES header goes on in the next packet
	case err != nil, !IsVideoStreamID(h.StreamID), h.DataOffset > k.n:
		return k.give(NotKey)
	}
	key, decided := Keyframe(k.family, k.buf[h.DataOffset:k.n])
	if !decided && k.n < len(k.buf) {
		return Pending
	}
	if key {
		return k.give(Key)
	}
	return k.give(NotKey)
}

// give reports v for the PES in progress, once.
func (k *KeyframeProbe) give(v Verdict) Verdict {
	if !k.open {
		return Pending
	}
	k.open = false
	return v
}
