package crossbar

import (
	"slices"
	"sync"

	"github.com/gorilla/websocket"

	"github.com/vwlab/vw/hub"
	"github.com/vwlab/vw/ts"
)

// psiCache keeps a stream topic's latest PAT packet and the latest packet of
// each PMT the PAT names, so that a viewer joining a running stream can be
// sent them first and a player that needs them starts at once instead of at
// the next repeat. Only tables that fit one packet are kept (ffmpeg's always
// do); anything else is ignored, never half-kept.
type psiCache struct {
	mu      sync.Mutex
	pat     []byte            // 188 bytes, or nil
	pmtPIDs []uint16          // PMT PIDs named by pat
	pmts    map[uint16][]byte // 188 bytes each
	msg     *hub.Message      // built from the above on demand; nil when stale
}

// observe scans whole, aligned packets for PAT and PMT packets.
func (c *psiCache) observe(pkts []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := 0; i+ts.PacketSize <= len(pkts); i += ts.PacketSize {
		p := pkts[i : i+ts.PacketSize]
		pid := ts.PID(p)
		switch {
		case pid == ts.PIDPAT:
			pids, ok := parsePAT(p)
			if !ok {
				continue
			}
			c.pat = append(c.pat[:0], p...)
			if !slices.Equal(pids, c.pmtPIDs) {
				c.pmtPIDs = pids
				for k := range c.pmts {
					if !slices.Contains(pids, k) {
						delete(c.pmts, k)
					}
				}
			}
			c.msg = nil
		case slices.Contains(c.pmtPIDs, pid):
			if !isPMT(p) {
				continue
			}
			if c.pmts == nil {
				c.pmts = make(map[uint16][]byte)
			}
			c.pmts[pid] = append(c.pmts[pid][:0], p...)
			c.msg = nil
		}
	}
}

// message returns the cached tables as one binary message (PAT, then the
// PMTs in the PAT's order), or nil if no PAT has been seen. The message is
// built once per change and shared.
func (c *psiCache) message() *hub.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pat == nil {
		return nil
	}
	if c.msg == nil {
		data := slices.Clone(c.pat)
		for _, pid := range c.pmtPIDs {
			data = append(data, c.pmts[pid]...)
		}
		h := make([]byte, headerLen(len(data)))
		putHeader(h, websocket.BinaryMessage, len(data))
		c.msg = &hub.Message{Data: data, Header: h}
	}
	return c.msg
}

// reset forgets everything, when a stream's last publisher leaves.
func (c *psiCache) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pat, c.pmtPIDs, c.msg = nil, nil, nil
	clear(c.pmts)
}

// section returns the PSI section that starts in packet p, cut to its
// section_length, when the packet starts one and the whole section fits in
// it; ok is false otherwise.
func section(p []byte) (sec []byte, ok bool) {
	if len(p) < ts.PacketSize || p[0] != ts.SyncByte || !ts.PayloadUnitStart(p) || !ts.HasPayload(p) {
		return nil, false
	}
	off := 4
	if p[3]&0x20 != 0 { // adaptation field
		off += 1 + int(p[4])
	}
	if off >= ts.PacketSize {
		return nil, false
	}
	off += 1 + int(p[off]) // pointer_field
	if off+3 > ts.PacketSize {
		return nil, false
	}
	n := int(p[off+1]&0x0f)<<8 | int(p[off+2])
	end := off + 3 + n
	// A long-form section has 5 header bytes after section_length and a
	// 4-byte CRC.
	if n < 9 || end > ts.PacketSize || p[off+1]&0x80 == 0 {
		return nil, false
	}
	return p[off:end], true
}

// parsePAT returns the PMT PIDs a PAT packet names (network PIDs skipped),
// in order.
func parsePAT(p []byte) ([]uint16, bool) {
	sec, ok := section(p)
	if !ok || sec[0] != 0x00 {
		return nil, false
	}
	progs := sec[8 : len(sec)-4]
	if len(progs)%4 != 0 {
		return nil, false
	}
	var pids []uint16
	for i := 0; i < len(progs); i += 4 {
		num := uint16(progs[i])<<8 | uint16(progs[i+1])
		pid := uint16(progs[i+2]&0x1f)<<8 | uint16(progs[i+3])
		if num != 0 && !slices.Contains(pids, pid) {
			pids = append(pids, pid)
		}
	}
	return pids, true
}

// isPMT reports whether p starts a PMT section that fits in it.
func isPMT(p []byte) bool {
	sec, ok := section(p)
	return ok && sec[0] == 0x02
}
