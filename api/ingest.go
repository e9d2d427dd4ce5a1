package api

import (
	"errors"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/mux"
	"github.com/sirupsen/logrus"

	"github.com/vwlab/vw/agg"
	"github.com/vwlab/vw/hub"
	"github.com/vwlab/vw/rules"
	"github.com/vwlab/vw/ts"
)

// readSize is how much of ffmpeg's body one read asks for: ffmpeg's chunks
// are up to 32 KiB, and one read becomes one message.
const readSize = 64 << 10

// ingest is one POST /ts/{feed} connection.
type ingest struct {
	feed  string
	id    uint64
	rc    *http.ResponseController
	check *inputCheck // set by claim

	mu       sync.Mutex // held while publishing, so a replaced ingest can't slip one in
	replaced bool
}

// stop makes the ingest's pending read fail at once, from any goroutine,
// and stops it publishing. The deadline stays in the past: the server's
// discarding of the unread body after the handler returns fails at once
// too, instead of waiting for a client that sends nothing more.
func (in *ingest) stop() {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.replaced = true
	_ = in.rc.SetReadDeadline(time.Now())
}

// extend gives the next read idle more time, unless the ingest has been
// stopped; under stop's lock, so that stop's deadline is never overwritten
// by a read that starts just after it.
func (in *ingest) extend(idle time.Duration) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.replaced {
		return false
	}
	_ = in.rc.SetReadDeadline(time.Now().Add(idle))
	return true
}

// publish sends m unless the ingest has been replaced or stopped.
func (in *ingest) publish(t *hub.Topic, m *hub.Message) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.replaced {
		return false
	}
	t.Publish(m)
	return true
}

// claim makes in the feed's current ingest and stops the one it replaces,
// so that two ffmpeg processes never interleave on one feed.
func (s *Server) claim(in *ingest) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	if old := s.feeds[in.feed]; old != nil {
		old.stop()
		s.log.WithField("feed", in.feed).Info("feed replaced by a new POST")
	}
	s.feeds[in.feed] = in
	in.check = &inputCheck{c: s.countersOf(in.feed)}
	return true
}

func (s *Server) release(in *ingest) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.feeds[in.feed] == in {
		delete(s.feeds, in.feed)
	}
}

// handleIngest reads ffmpeg's MPEG-TS body for as long as it lasts and
// publishes each read's whole packets at once, never a partial packet.
func (s *Server) handleIngest(w http.ResponseWriter, r *http.Request) {
	feed := mux.Vars(r)["feed"]
	if err := rules.CheckName("feed name", feed); err != nil {
		s.fail(w, r, http.StatusBadRequest, err)
		return
	}
	in := &ingest{feed: feed, id: s.hub.NewID(), rc: http.NewResponseController(w)}
	if !s.claim(in) {
		s.fail(w, r, http.StatusServiceUnavailable, errors.New("shutting down"))
		return
	}
	defer s.release(in)

	log := s.log.WithFields(logrus.Fields{"feed": feed, "remote": r.RemoteAddr})
	log.Info("feed connected")
	topic := s.hub.Join(agg.FeedTopic(feed))
	defer topic.Leave()
	codecs := s.rules.WatchFeed(feed, in.id)
	defer codecs.Close()

	var (
		al       ts.Aligner
		buf      = make([]byte, readSize)
		total    int64
		messages int
		err      error
	)
	for {
		if !in.extend(s.cfg.IngestIdle) {
			break
		}
		var n int
		n, err = r.Body.Read(buf)
		if n > 0 {
			total += int64(n)
			// One buffer per message, owned by the hub from here on.
			pkts := al.Append(make([]byte, 0, n+ts.PacketSize), buf[:n])
			in.check.observe(&al, pkts)
			if len(pkts) > 0 {
				codecs.Observe(pkts)
				if !in.publish(topic, &hub.Message{Data: pkts, From: in.id}) {
					break
				}
				messages++
			}
		}
		if err != nil {
			break
		}
	}
	in.mu.Lock()
	replaced := in.replaced
	in.mu.Unlock()
	f := logrus.Fields{"bytes": total, "messages": messages, "skipped": al.Skipped()}
	switch {
	case replaced:
		log.WithFields(f).Info("feed ended: replaced or shutting down")
	case err != nil && !isEOF(err):
		log.WithFields(f).WithField("err", err).Info("feed ended")
	default:
		log.WithFields(f).Info("feed ended")
	}
	if al.Skipped() > 0 {
		log.WithField("skipped", al.Skipped()).Warn("feed sent bytes that are not MPEG-TS packets; they were dropped")
	}
	w.WriteHeader(http.StatusOK)
}

func isEOF(err error) bool { return errors.Is(err, io.EOF) }
