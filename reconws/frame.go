package reconws

import (
	"encoding/binary"
	"math/rand/v2"

	"github.com/vwlab/vw/internal/wsframe"
)

// appendFrame appends one complete, masked websocket data frame carrying
// data to buf. A client must mask every frame it sends (RFC 6455 §5.3), so
// the payload is copied and masked in buf (by wsframe, the relay's frame
// writer too); the caller's slice, which may be shared with other
// subscribers of a hub topic, is never written.
func appendFrame(buf []byte, data []byte, text bool) []byte {
	op := wsframe.Binary
	if text {
		op = wsframe.Text
	}
	// gorilla/websocket draws its mask keys from math/rand too; the key only
	// has to be unpredictable to scripts in a browser, which we are not.
	var key [4]byte
	binary.LittleEndian.PutUint32(key[:], rand.Uint32())
	return wsframe.AppendFrame(buf, op, data, &key)
}
