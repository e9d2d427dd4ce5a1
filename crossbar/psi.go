package crossbar

import (
	"slices"
	"sync"

	"github.com/vwlab/vw/hub"
	"github.com/vwlab/vw/internal/wsframe"
	"github.com/vwlab/vw/ts"
)

// psiCache keeps a stream topic's latest PAT packet and the latest packet of
// each PMT the PAT names, so that a viewer joining a running stream can be
// sent them first and a player that needs them starts at once instead of at
// the next repeat. Only tables that fit one packet and pass their CRC are
// kept (ffmpeg's always fit); anything else is ignored, never half-kept.
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
		h := make([]byte, wsframe.HeaderLen(len(data), false))
		wsframe.PutHeader(h, wsframe.Binary, len(data), nil)
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

// parsePAT returns the PMT PIDs that a PAT packet names (network PIDs
// skipped), in order. The PAT must fit the packet and pass its CRC.
func parsePAT(p []byte) ([]uint16, bool) {
	s, err := ts.PacketSection(p)
	if err != nil || s.TableID != ts.TablePAT {
		return nil, false
	}
	progs, err := ts.ParsePAT(s, nil)
	if err != nil {
		return nil, false
	}
	var pids []uint16
	for _, pr := range progs {
		if pr.Number != 0 && !slices.Contains(pids, pr.PID) {
			pids = append(pids, pr.PID)
		}
	}
	return pids, true
}

// isPMT reports whether p holds a whole PMT section with a good CRC.
func isPMT(p []byte) bool {
	s, err := ts.PacketSection(p)
	return err == nil && s.TableID == ts.TablePMT
}
