package jsmpeg

import (
	"io/fs"
	"regexp"
	"strconv"
	"testing"

	"github.com/vwlab/vw/ts"
)

// TestCodecFamiliesAgree: the players' codec choice has one source, ts.Family.
// The names Config.Codec gives are Family.String(), and the stream-type
// table the pages sniff PMTs with (vw-codec.js) says what ts.FamilyOf says,
// for every stream type.
func TestCodecFamiliesAgree(t *testing.T) {
	if CodecMPEG1 != ts.FamilyMPEG1.String() || CodecH264 != ts.FamilyH264.String() {
		t.Fatalf("codec names %q, %q; ts names them %q, %q", CodecMPEG1, CodecH264, ts.FamilyMPEG1, ts.FamilyH264)
	}
	js, err := fs.ReadFile(files, "assets/"+codecScript)
	if err != nil {
		t.Fatal(err)
	}
	table := regexp.MustCompile(`const families = \{([^}]*)\}`).FindSubmatch(js)
	if table == nil {
		t.Fatal("vw-codec.js has no families table")
	}
	sniffed := map[uint8]string{}
	for _, m := range regexp.MustCompile(`0x([0-9a-f]{2}): "(\w+)"`).FindAllSubmatch(table[1], -1) {
		typ, _ := strconv.ParseUint(string(m[1]), 16, 8)
		sniffed[uint8(typ)] = string(m[2])
	}
	for typ := range 256 {
		if got, want := sniffed[uint8(typ)], ts.FamilyOf(uint8(typ)).String(); got != want {
			t.Errorf("stream type %#02x: vw-codec.js says %q, ts.FamilyOf %q", typ, got, want)
		}
	}
}
