package ts

import "testing"

func TestFamilyOf(t *testing.T) {
	for typ, want := range map[uint8]Family{
		TypeMPEG1Video: FamilyMPEG1, TypeMPEG2Video: FamilyMPEG1, TypeMPEG1Audio: FamilyMPEG1, TypeMPEG2Audio: FamilyMPEG1,
		TypeH264: FamilyH264, TypeADTS: FamilyH264,
		0x06: FamilyNone, 0x24: FamilyNone,
	} {
		if got := FamilyOf(typ); got != want {
			t.Errorf("FamilyOf(%#x) = %v, want %v", typ, got, want)
		}
	}
	for typ := range 256 {
		want := typ == TypeMPEG1Video || typ == TypeMPEG2Video || typ == TypeH264
		if got := IsVideo(uint8(typ)); got != want {
			t.Errorf("IsVideo(%#x) = %v", typ, got)
		}
	}
	for typ, want := range map[uint8][2]string{
		TypeMPEG2Video: {"video", "mpeg1video"}, TypeADTS: {"audio", "aac"}, TypeHEVC: {"video", "hevc"}, 0x06: {"data", "type 0x06"},
	} {
		if kind, codec := KindOf(typ), CodecName(typ); kind != want[0] || codec != want[1] {
			t.Errorf("stream type %#x: %s %s, want %s %s", typ, kind, codec, want[0], want[1])
		}
	}
	pmt := &PMT{Streams: []Stream{{Type: 0x06}, {Type: TypeADTS}, {Type: TypeMPEG1Video}}}
	if got := StreamFamily(pmt); got != FamilyH264 {
		t.Errorf("StreamFamily = %v, want the first typed track's, h264", got)
	}
}
