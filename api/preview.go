package api

import (
	"errors"
	"net/http"
	"time"

	"github.com/gorilla/mux"
	"github.com/gorilla/websocket"

	"github.com/vwlab/vw/hub"
	"github.com/vwlab/vw/rules"
)

const (
	previewWriteWait = 10 * time.Second
	previewQueue     = 256
)

// upgrader accepts jsmpeg's optional "null" subprotocol and, by gorilla's
// default, only same-origin pages: a web page open in a browser on the lab
// host must not be able to watch the cameras through 127.0.0.1.
var upgrader = websocket.Upgrader{
	Subprotocols:    []string{"null"},
	ReadBufferSize:  1024,
	WriteBufferSize: 32 << 10,
}

// handlePreview sends a stream (or a feed) to a local websocket client, so a
// hoster can check a camera before pointing it at a relay. What the client
// sends is dropped. A client that falls behind is disconnected rather than
// allowed to hold messages back from anyone else.
func (s *Server) handlePreview(w http.ResponseWriter, r *http.Request) {
	name := mux.Vars(r)["stream"]
	if err := rules.CheckName("stream name", name); err != nil {
		s.fail(w, r, http.StatusBadRequest, err)
		return
	}
	// Register before upgrading, under the lock Close takes, so that Close
	// either sees this connection or refuses it.
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		s.fail(w, r, http.StatusServiceUnavailable, errors.New("shutting down"))
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()

	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered with an error status
	}
	log := s.log.WithFields(map[string]any{"stream": name, "remote": r.RemoteAddr})
	log.Debug("preview connected")
	// Replay: the topic's keyframe cache, if it has one (vw stream gives
	// streams and feeds one), so that the player has a picture at once.
	sub := s.hub.Subscribe(s.rules.Topic(name), hub.SubConfig{Queue: previewQueue, Policy: hub.Kick, Replay: true})

	defer sub.Close()

	// The read loop only notices the client leaving. Gorilla answers its
	// pings with WriteControl, which may run alongside the writes below.
	gone := make(chan struct{})
	go func() {
		defer close(gone)
		for {
			if _, _, err := conn.ReadMessage(); err != nil {
				return
			}
		}
	}()

	reason := s.writePreview(conn, sub, gone)
	_ = conn.WriteControl(websocket.CloseMessage,
		websocket.FormatCloseMessage(websocket.CloseNormalClosure, reason), time.Now().Add(time.Second))
	_ = conn.Close()
	<-gone
	log.WithField("reason", reason).Debug("preview closed")
}

// writePreview is the preview's write loop: it writes the subscription's
// messages to conn until something ends it, and says what did. The replay
// goes first.
func (s *Server) writePreview(conn *websocket.Conn, sub *hub.Sub, gone <-chan struct{}) string {
	write := func(m *hub.Message) error {
		typ := websocket.BinaryMessage
		if m.Text {
			typ = websocket.TextMessage
		}
		_ = conn.SetWriteDeadline(time.Now().Add(previewWriteWait))
		return conn.WriteMessage(typ, m.Data)
	}
	for _, m := range sub.Replay() {
		if err := write(m); err != nil {
			return "write failed"
		}
	}
	for {
		select {
		case m := <-sub.C():
			if err := write(m); err != nil {
				return "write failed"
			}
		case <-sub.Done():
			return "too slow: fell behind the stream"
		case <-gone:
			return "client left"
		case <-s.done:
			return "server shutting down"
		}
	}
}
