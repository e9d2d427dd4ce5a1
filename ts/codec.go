package ts

// Family is a set of codecs that one browser player plays together: a
// stream's tracks must all be of one family. It is the one name of a codec
// in vw: which player a stream needs (String), whether streams mix (agg),
// and how to find a video stream's keyframes (Keyframe).
type Family uint8

const (
	// FamilyNone is a stream type that belongs to no family: data, or a
	// codec no player of ours plays. It mixes with anything.
	FamilyNone Family = iota
	// FamilyMPEG1 is MPEG-1 video and MPEG-1 audio (MP2), which jsmpeg
	// decodes in JavaScript. ffmpeg labels mpeg1video as MPEG-2 video.
	FamilyMPEG1
	// FamilyH264 is H.264 video and AAC audio (ADTS), which browsers decode
	// through Media Source Extensions.
	FamilyH264
)

// String names the family as the player pages and the API do.
func (f Family) String() string {
	switch f {
	case FamilyMPEG1:
		return "mpeg1"
	case FamilyH264:
		return "h264"
	}
	return ""
}

// Title names the family for people.
func (f Family) Title() string {
	switch f {
	case FamilyMPEG1:
		return "MPEG-1/MP2"
	case FamilyH264:
		return "H.264/AAC"
	}
	return "other"
}

// Stream types (ISO/IEC 13818-1 table 2-34): those of the two families,
// and a few others feeds may carry.
const (
	TypeMPEG1Video = 0x01
	TypeMPEG2Video = 0x02
	TypeMPEG1Audio = 0x03
	TypeMPEG2Audio = 0x04
	TypeADTS       = 0x0f
	TypeLATM       = 0x11
	TypeH264       = 0x1b
	TypeHEVC       = 0x24
	TypeAC3        = 0x81
)

// streamType is what vw knows of a stream type: the kind of track ("video",
// "audio"), the codec as ffprobe names it, and its family.
type streamType struct {
	kind, codec string
	family      Family
}

// streamTypes is the one table of stream types: FamilyOf, IsVideo, KindOf
// and CodecName all read it.
var streamTypes = map[uint8]streamType{
	TypeMPEG1Video: {"video", "mpeg1video", FamilyMPEG1},
	// ffmpeg labels MPEG-1 video as MPEG-2 (type 2) too; only a sequence
	// extension in the video tells MPEG-2.
	TypeMPEG2Video: {"video", "mpeg1video", FamilyMPEG1},
	TypeMPEG1Audio: {"audio", "mp2", FamilyMPEG1},
	TypeMPEG2Audio: {"audio", "mp2", FamilyMPEG1},
	TypeADTS:       {"audio", "aac", FamilyH264},
	TypeH264:       {"video", "h264", FamilyH264},
	TypeLATM:       {"audio", "aac_latm", FamilyNone},
	TypeHEVC:       {"video", "hevc", FamilyNone},
	TypeAC3:        {"audio", "ac3", FamilyNone},
}

// FamilyOf returns the family of a PMT stream type.
func FamilyOf(streamType uint8) Family { return streamTypes[streamType].family }

// IsVideo reports whether a PMT stream type is the video of a family: the
// tracks whose keyframes Keyframe finds.
func IsVideo(streamType uint8) bool {
	t := streamTypes[streamType]
	return t.kind == "video" && t.family != FamilyNone
}

// KindOf names the kind of track a PMT stream type is: "video", "audio",
// or "data" for any other.
func KindOf(streamType uint8) string {
	if k := streamTypes[streamType].kind; k != "" {
		return k
	}
	return "data"
}

// CodecName names the codec of a PMT stream type the way ffprobe does, or
// gives the type in hex.
func CodecName(streamType uint8) string {
	if c := streamTypes[streamType].codec; c != "" {
		return c
	}
	const hex = "0123456789abcdef"
	return "type 0x" + string([]byte{hex[streamType>>4], hex[streamType&0xf]})
}

// StreamFamily returns the family of a program from its PMT's stream
// types: the family of its first typed track, FamilyNone if it has none.
func StreamFamily(pmt *PMT) Family {
	for _, s := range pmt.Streams {
		if f := FamilyOf(s.Type); f != FamilyNone {
			return f
		}
	}
	return FamilyNone
}
