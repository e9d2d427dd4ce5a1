package agg

// AAC in ADTS framing (ISO/IEC 14496-3 1.A.2), as much of it as a muted
// track needs: read the configuration off a frame's header, and write a
// frame that decodes to silence with that configuration.

// adtsHeaderLen is the length of an ADTS header without CRC.
const adtsHeaderLen = 7

// samplesPerFrame is the length of an AAC-LC frame.
const samplesPerFrame = 1024

var adtsRates = [...]int{96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350}

// adtsConfig is what a silent frame must share with the track it stands in
// for: MPEG version, audio object type, sampling rate and channels.
type adtsConfig struct {
	id       byte // 0 MPEG-4, 1 MPEG-2
	profile  byte // audio object type - 1
	rateIdx  byte
	channels byte // channel_configuration
}

// parseADTS reads the configuration of the ADTS frame b starts with.
func parseADTS(b []byte) (adtsConfig, bool) {
	if len(b) < adtsHeaderLen || b[0] != 0xff || b[1]&0xf6 != 0xf0 {
		return adtsConfig{}, false
	}
	c := adtsConfig{
		id:       b[1] >> 3 & 1,
		profile:  b[2] >> 6,
		rateIdx:  b[2] >> 2 & 0x0f,
		channels: b[2]&1<<2 | b[3]>>6,
	}
	if int(c.rateIdx) >= len(adtsRates) {
		return adtsConfig{}, false
	}
	return c, true
}

// rate is the sampling rate in Hz.
func (c adtsConfig) rate() int { return adtsRates[c.rateIdx] }

// silentOK reports whether appendSilentADTS can write frames for c: AAC LC
// (the profile every encoder for browsers uses) in mono or stereo.
func (c adtsConfig) silentOK() bool {
	return c.profile == 1 && (c.channels == 1 || c.channels == 2)
}

// appendSilentADTS appends one ADTS frame of c that decodes to silence: a
// raw data block of one channel element whose channels code no spectral
// band at all (max_sfb 0), then the end element.
func appendSilentADTS(dst []byte, c adtsConfig) []byte {
	var w bitWriter
	// An individual_channel_stream coding nothing: global_gain, then
	// ics_info (long window, max_sfb 0, no prediction), then no pulse, TNS
	// or gain control data.
	ics := func() {
		w.put(8, 0)  // global_gain: scales nothing here
		w.put(11, 0) // ics_info
		w.put(3, 0)  // pulse, tns, gain control: absent
	}
	if c.channels == 1 {
		w.put(3, 0) // ID_SCE
		w.put(4, 0) // element_instance_tag
		ics()
	} else {
		w.put(3, 1) // ID_CPE
		w.put(4, 0)
		w.put(1, 0) // common_window: each channel says its own
		ics()
		ics()
	}
	w.put(3, 7) // ID_END
	raw := w.bytes()
	n := adtsHeaderLen + len(raw)
	dst = append(dst,
		0xff,
		0xf1|c.id<<3, // layer 0, no CRC
		c.profile<<6|c.rateIdx<<2|c.channels>>2,
		c.channels<<6|byte(n>>11),
		byte(n>>3),
		byte(n<<5)|0x1f, // buffer fullness 0x7ff: variable rate
		0xfc,            // one raw data block
	)
	return append(dst, raw...)
}

// bitWriter writes MSB-first bit fields.
type bitWriter struct {
	b []byte
	n int // bits written
}

func (w *bitWriter) put(bits int, v uint32) {
	for i := bits - 1; i >= 0; i-- {
		if w.n%8 == 0 {
			w.b = append(w.b, 0)
		}
		if v>>i&1 != 0 {
			w.b[len(w.b)-1] |= 0x80 >> (w.n % 8)
		}
		w.n++
	}
}

// bytes returns what was written, zero-padded to a byte boundary.
func (w *bitWriter) bytes() []byte { return w.b }
