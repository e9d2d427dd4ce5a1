package wsframe

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestHeader pins the header bytes at each length boundary, masked and not.
func TestHeader(t *testing.T) {
	key := &[4]byte{0xa1, 0xb2, 0xc3, 0xd4}
	for _, tc := range []struct {
		op, n int
		key   *[4]byte
		want  string
	}{
		{Binary, 0, nil, "8200"},
		{Text, 125, nil, "817d"},
		{Binary, 126, nil, "827e007e"},
		{Binary, 0xffff, nil, "827effff"},
		{Binary, 0x10000, nil, "827f0000000000010000"},
		{Close, 2, nil, "8802"},
		{Binary, 0, key, "8280a1b2c3d4"},
		{Text, 125, key, "81fda1b2c3d4"},
		{Binary, 126, key, "82fe007ea1b2c3d4"},
		{Binary, 0x10000, key, "82ff0000000000010000a1b2c3d4"},
	} {
		b := make([]byte, MaxHeader)
		h := PutHeader(b, tc.op, tc.n, tc.key)
		if got := hex.EncodeToString(b[:h]); got != tc.want || h != HeaderLen(tc.n, tc.key != nil) {
			t.Errorf("op %d, %d bytes, masked %v: %s (%d), want %s", tc.op, tc.n, tc.key != nil, got, h, tc.want)
		}
	}
}

// TestFramesReadByGorilla: frames from AppendFrame, unmasked from a server
// and masked from a client, are read back by gorilla/websocket as the
// messages they carry, at every length boundary; a shared payload is left
// as it was.
func TestFramesReadByGorilla(t *testing.T) {
	sizes := []int{0, 1, 125, 126, 127, 0xffff, 0x10000, 200 << 10}
	server := make(chan *websocket.Conn, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		up := websocket.Upgrader{}
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			t.Error(err)
			return
		}
		server <- c
	}))
	defer srv.Close()
	client, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	sc := <-server
	defer sc.Close()

	for _, masked := range []bool{false, true} {
		from, to := sc, client // a server sends unmasked
		var key *[4]byte
		if masked {
			from, to, key = client, sc, &[4]byte{1, 2, 3, 0xfe}
		}
		for i, n := range sizes {
			payload := bytes.Repeat([]byte(fmt.Sprint(i)), n)
			orig := bytes.Clone(payload)
			op := Binary
			if i%2 == 1 {
				op = Text
			}
			frame := AppendFrame([]byte("junk before"), op, payload, key)[len("junk before"):]
			go func() { _, _ = from.NetConn().Write(frame) }()
			_ = to.SetReadDeadline(time.Now().Add(5 * time.Second))
			mt, got, err := to.ReadMessage()
			if err != nil || mt != op || !bytes.Equal(got, orig) || !bytes.Equal(payload, orig) {
				t.Fatalf("masked %v, %d bytes: read type %d, %d bytes, %v; payload kept: %v", masked, n, mt, len(got), err, bytes.Equal(payload, orig))
			}
		}
	}
}

// FuzzMask: any payload under any key is masked by the byte-by-byte rule
// of RFC 6455 §5.3, at every offset the eight-byte loop leaves a tail, and
// masking twice unmasks.
func FuzzMask(f *testing.F) {
	f.Add([]byte("hello, world"), uint32(0xdeadbeef))
	f.Add([]byte{}, uint32(0))
	f.Fuzz(func(t *testing.T, data []byte, k uint32) {
		key := [4]byte{byte(k), byte(k >> 8), byte(k >> 16), byte(k >> 24)}
		got := bytes.Clone(data)
		Mask(key, got)
		for i := range data {
			if got[i] != data[i]^key[i%4] {
				t.Fatalf("byte %d of %d: got %#x, want %#x", i, len(data), got[i], data[i]^key[i%4])
			}
		}
		Mask(key, got)
		if !bytes.Equal(got, data) {
			t.Fatalf("%d bytes: masking twice did not unmask", len(data))
		}
	})
}

// TestNoAllocs: with room in the destination, writing a frame allocates
// nothing, masked or not: the relay frames every message it reads and the
// client every backlog it writes.
func TestNoAllocs(t *testing.T) {
	payload := make([]byte, 2048)
	buf := make([]byte, 0, 4096)
	key := [4]byte{1, 2, 3, 4}
	hdr := make([]byte, MaxHeader)
	if n := testing.AllocsPerRun(100, func() {
		buf = AppendFrame(buf[:0], Binary, payload, nil)
		buf = AppendFrame(buf[:0], Binary, payload, &key)
		PutHeader(hdr, Text, len(payload), nil)
	}); n != 0 {
		t.Fatalf("%v allocations per frame, want 0", n)
	}
}

func BenchmarkAppendFrame(b *testing.B) {
	payload := make([]byte, 7*188)
	buf := make([]byte, 0, 4096)
	key := [4]byte{1, 2, 3, 4}
	b.Run("unmasked", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(payload)))
		for range b.N {
			buf = AppendFrame(buf[:0], Binary, payload, nil)
		}
	})
	b.Run("masked", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(payload)))
		for range b.N {
			buf = AppendFrame(buf[:0], Binary, payload, &key)
		}
	})
}
