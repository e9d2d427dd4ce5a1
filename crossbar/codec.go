package crossbar

import (
	"github.com/vwlab/vw/ts"
)

// family returns the codec family of the topic's program, read from the
// cached PMT: which player its viewers need. FamilyNone when unknown, and
// for a topic that keeps no tables (c nil).
func (c *psiCache) family() ts.Family {
	if c == nil {
		return ts.FamilyNone
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var pmt ts.PMT
	for _, pid := range c.pmtPIDs {
		s, err := ts.PacketSection(c.pmts[pid])
		if err != nil || s.TableID != ts.TablePMT || ts.ParsePMT(s, &pmt) != nil {
			continue
		}
		if f := ts.StreamFamily(&pmt); f != ts.FamilyNone {
			return f
		}
	}
	return ts.FamilyNone
}

// codecOf names the codec family of a live stream (the part of its topic
// after /out/) for the player pages: "mpeg1", "h264", or "" when the relay
// has not seen its PMT.
func (s *Server) codecOf(stream string) string { return s.family(stream).String() }

func (s *Server) family(stream string) ts.Family {
	s.mu.Lock()
	t := s.topics["/out/"+stream]
	s.mu.Unlock()
	if t == nil {
		return ts.FamilyNone
	}
	return t.psi.family()
}
