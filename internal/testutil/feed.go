package testutil

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
)

// Feed is an ffmpeg feed as the README tells a lab hoster to run one: the
// output options are read from the README's "Feeds (ffmpeg)" block (or its
// "H.264" block), and the inputs are the lavfi sources the README says
// stand in for a camera and a microphone. Every test that runs a feed runs
// it through here, so the README's command lines are what the tests
// exercise.
type Feed struct {
	// Video and Audio choose the README's camera and microphone feeds; with
	// both, one process muxes the two (a publisher of a whole stream).
	Video, Audio bool
	// H264 chooses the README's H.264 (libx264) camera and AAC microphone
	// instead of MPEG-1 and MP2.
	H264 bool
	// Out is where ffmpeg sends: http://…/ts/{feed}, or pipe:1.
	Out string
	// Size replaces the stand-in's picture size. Empty means 320x240,
	// smaller than the README's, to spare a shared machine's CPU; the
	// output options stay the README's.
	Size string
	// Extra are output options added before Out: -t 3, -headers ….
	Extra []string
}

// Args returns ffmpeg's arguments for the feed.
func (f Feed) Args(t testing.TB) []string {
	t.Helper()
	rf, err := readmeFeeds()
	if err != nil {
		t.Fatalf("the README's feeds: %v", err)
	}
	if f.H264 {
		rf = *rf.h264
	}
	size := f.Size
	if size == "" {
		size = "320x240"
	}
	args := []string{"-nostdin", "-v", "error"}
	var codec []string
	if f.Video {
		in := slices.Clone(rf.video.standIn)
		for i, a := range in {
			in[i] = regexp.MustCompile(`size=[0-9]+x[0-9]+`).ReplaceAllString(a, "size="+size)
		}
		args = append(args, in...)
		codec = append(codec, rf.video.codec...)
	}
	if f.Audio {
		args = append(args, rf.audio.standIn...)
		codec = append(codec, rf.audio.codec...)
	}
	if !f.Video && !f.Audio {
		t.Fatal("testutil.Feed: neither Video nor Audio")
	}
	args = append(args, codec...)
	args = append(args, rf.video.container...)
	args = append(args, f.Extra...)
	return append(args, f.Out)
}

// StartFeed starts the feed; the test fails, or skips outside CI, without
// ffmpeg.
func StartFeed(t testing.TB, f Feed) *Proc {
	t.Helper()
	return Start(t, exec.Command(NeedTool(t, "ffmpeg"), f.Args(t)...))
}

// StartFeedReading starts a feed whose Out is pipe:1 and returns its
// output to read.
func StartFeedReading(t testing.TB, f Feed) (*Proc, io.Reader) {
	t.Helper()
	if f.Out == "" {
		f.Out = "pipe:1"
	}
	return StartReading(t, exec.Command(NeedTool(t, "ffmpeg"), f.Args(t)...))
}

// readmeFeed is one feed command of the README, cut into its parts.
type readmeFeed struct {
	line      string   // the whole command line
	standIn   []string // the README's lavfi input for it
	codec     []string // output options up to -f
	container []string // -f mpegts and what follows it, before the URL
}

// feedLines are the README's two feeds, and its two H.264 family ones.
type feedLines struct {
	video, audio readmeFeed
	h264         *feedLines
}

// readme holds the README's feeds, read once per test binary.
var readme struct {
	once  sync.Once
	feeds feedLines
	err   error
}

func readmeFeeds() (feedLines, error) {
	readme.once.Do(func() { readme.feeds, readme.err = parseREADMEFeeds() })
	return readme.feeds, readme.err
}

// READMEFeedLines returns the README's camera and microphone command lines,
// continuation lines joined.
func READMEFeedLines(t testing.TB) (camera, microphone string) {
	t.Helper()
	rf, err := readmeFeeds()
	if err != nil {
		t.Fatalf("the README's feeds: %v", err)
	}
	return rf.video.line, rf.audio.line
}

func parseREADMEFeeds() (feedLines, error) {
	root, err := ModuleRoot()
	if err != nil {
		return feedLines{}, err
	}
	b, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		return feedLines{}, err
	}
	mpeg1, rest, err := feedBlock(string(b), "### Feeds (ffmpeg)", "mpeg1video")
	if err != nil {
		return feedLines{}, err
	}
	for _, m := range regexp.MustCompile("`(-re -f lavfi -i [^`]+)`").FindAllStringSubmatch(rest, -1) {
		switch in := strings.Fields(m[1]); {
		case strings.Contains(m[1], "testsrc"):
			mpeg1.video.standIn = in
		case strings.Contains(m[1], "sine"):
			mpeg1.audio.standIn = in
		}
	}
	if mpeg1.video.standIn == nil || mpeg1.audio.standIn == nil {
		return feedLines{}, fmt.Errorf("want lavfi stand-ins (testsrc, sine) after the Feeds block")
	}
	h264, _, err := feedBlock(string(b), "## H.264", "libx264")
	if err != nil {
		return feedLines{}, err
	}
	h264.video.standIn, h264.audio.standIn = mpeg1.video.standIn, mpeg1.audio.standIn
	mpeg1.h264 = &h264
	return mpeg1, nil
}

// feedBlock returns the camera (the line with the video codec named) and
// microphone feeds of the first sh block after heading, and the README
// after that block.
func feedBlock(readme, heading, videoCodec string) (feedLines, string, error) {
	var fl feedLines
	_, sec, ok := strings.Cut(readme, "\n"+heading+"\n")
	if !ok {
		return fl, "", fmt.Errorf("no %q section", heading)
	}
	_, block, _ := strings.Cut(sec, "```sh\n")
	block, rest, _ := strings.Cut(block, "```")
	block = strings.ReplaceAll(block, "\\\n", " ")
	for _, l := range strings.Split(block, "\n") {
		l = strings.Join(strings.Fields(l), " ")
		if !strings.HasPrefix(l, "ffmpeg ") {
			continue
		}
		f, err := cutFeed(l)
		if err != nil {
			return fl, "", err
		}
		switch {
		case slices.Contains(f.codec, videoCodec):
			fl.video = f
		case slices.Contains(f.codec, "-c:a"):
			fl.audio = f
		}
	}
	switch {
	case fl.video.line == "" || fl.audio.line == "":
		return fl, "", fmt.Errorf("want a %s camera and a microphone (-c:a) ffmpeg line in the block after %q", videoCodec, heading)
	case !slices.Equal(fl.video.container, fl.audio.container):
		return fl, "", fmt.Errorf("camera and microphone differ in their container options: %q, %q", fl.video.container, fl.audio.container)
	}
	return fl, rest, nil
}

// cutFeed splits "ffmpeg <input> -i <device> <codec options> -f … <url>".
func cutFeed(line string) (readmeFeed, error) {
	if strings.ContainsAny(line, `"'$`) {
		return readmeFeed{}, fmt.Errorf("%q: quotes and variables are more than this parser takes", line)
	}
	args := strings.Fields(line)
	in := slices.Index(args, "-i")
	f := -1
	if in >= 0 && in+2 <= len(args) {
		if k := slices.Index(args[in+2:], "-f"); k >= 0 {
			f = in + 2 + k
		}
	}
	if f < 0 || len(args) < f+3 {
		return readmeFeed{}, fmt.Errorf("%q is not ffmpeg <input> -i <device> <options> -f <format> … <url>", line)
	}
	return readmeFeed{
		line:      line,
		codec:     args[in+2 : f],
		container: args[f : len(args)-1],
	}, nil
}

// ModuleRoot returns the folder holding this module's go.mod, found from the
// working directory up (go test runs in the package's folder).
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}
