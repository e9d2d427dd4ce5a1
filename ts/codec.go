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

// Stream types of the two families (ISO/IEC 13818-1 table 2-34).
const (
	TypeMPEG1Video = 0x01
	TypeMPEG2Video = 0x02
	TypeMPEG1Audio = 0x03
	TypeMPEG2Audio = 0x04
	TypeADTS       = 0x0f
	TypeH264       = 0x1b
)

// FamilyOf returns the family of a PMT stream type.
func FamilyOf(streamType uint8) Family {
	switch streamType {
	case TypeMPEG1Video, TypeMPEG2Video, TypeMPEG1Audio, TypeMPEG2Audio:
		return FamilyMPEG1
	case TypeH264, TypeADTS:
		return FamilyH264
	}
	return FamilyNone
}

// IsVideo reports whether a PMT stream type is the video of a family: the
// tracks whose keyframes Keyframe finds.
func IsVideo(streamType uint8) bool {
	switch streamType {
	case TypeMPEG1Video, TypeMPEG2Video, TypeH264:
		return true
	}
	return false
}

// CodecName names the codec of a PMT stream type the way ffprobe does, or
// gives the type in hex.
func CodecName(streamType uint8) string {
	switch streamType {
	case TypeMPEG1Video, TypeMPEG2Video:
		return "mpeg1video"
	case TypeMPEG1Audio, TypeMPEG2Audio:
		return "mp2"
	case TypeH264:
		return "h264"
	case TypeADTS:
		return "aac"
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
