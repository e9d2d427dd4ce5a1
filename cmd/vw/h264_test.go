package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vwlab/vw/internal/testutil"
	"github.com/vwlab/vw/internal/tscheck"
)

// ffmpegH264 runs the README's H.264 camera ("video") or AAC microphone
// ("audio") feed to url, lavfi standing in for the devices, until the test
// ends.
func ffmpegH264(t testing.TB, kind, url string) *testutil.Proc {
	t.Helper()
	return testutil.StartFeed(t, testutil.Feed{Video: kind == "video", Audio: kind == "audio", H264: true, Out: url})
}

// TestExamplesH264 runs the H.264 camera and AAC microphone scripts against
// a real vw stream and relay, lavfi standing in for the devices: the relay
// receives one program of one h264 and one aac track.
func TestExamplesH264(t *testing.T) {
	testutil.NeedTool(t, "curl")
	testutil.NeedTool(t, "ffprobe")
	relay := relayProc(t)
	stream := streamProc(t)
	env := []string{"VW=http://" + stream.addr, "RELAY=ws://" + relay.addr, "LAB=lab1", "STREAM=front"}

	cam := startExample(t, "camera-h264.sh", append(env, "INPUT=-re -f lavfi -i testsrc=size=320x240:rate=25", "SIZE=320x240"))
	mic := startExample(t, "microphone-aac.sh", append(env, "INPUT=-re -f lavfi -i sine=frequency=440:sample_rate=48000"))
	// Both feeds' PMTs have arrived before the rule, as on a lab host
	// whose feeds run all the time: the rule is checked against them.
	waitFeeds(t, stream, "video0", "h264", "audio0", "aac")
	if out := example(t, "rules.sh", env); !strings.Contains(out, `{"stream":"front","feeds":["video0","audio0"]}`) {
		t.Fatalf("rules.sh printed:\n%s", out)
	}
	v := watch(t, relay, "/out/lab1/front")
	v.grows(t, 150_000, 20*time.Second, "the H.264 example feeds at the relay")
	if !cam.Alive() || !mic.Alive() {
		t.Fatal("a feed script died")
	}
	p := probeViewer(t, v)
	if got := strings.Join(p.Codecs(), ","); got != "h264,aac" && got != "aac,h264" {
		t.Fatalf("the relay's viewer got %q, want one h264 and one aac track", got)
	}
	if len(p.Programs) != 1 || len(p.Programs[0].Streams) != 2 {
		t.Fatalf("want one program of both tracks: %+v", p.Programs)
	}
}

// TestCameraH264Encoders checks camera-h264.sh's encoder choice without a
// Raspberry Pi: an ffmpeg stand-in on PATH prints the arguments it was
// given. The Pi's hardware encoder gets none of libx264's options (it
// would refuse them), and a wrong ENCODER is refused before ffmpeg runs.
func TestCameraH264Encoders(t *testing.T) {
	dir := t.TempDir()
	fake := "#!/bin/sh\necho \"$@\"\n"
	if err := os.WriteFile(filepath.Join(dir, "ffmpeg"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	env := []string{"PATH=" + dir + string(os.PathListSeparator) + os.Getenv("PATH")}
	x264 := example(t, "camera-h264.sh", env)
	for _, want := range []string{"-c:v libx264", "-tune zerolatency", "-bf 0", "-pix_fmt yuv420p", "-g 25", "-f mpegts"} {
		if !strings.Contains(x264, want) {
			t.Errorf("libx264 command lacks %q: %s", want, x264)
		}
	}
	pi := example(t, "camera-h264.sh", append(env, "ENCODER=h264_v4l2m2m"))
	if !strings.Contains(pi, "-c:v h264_v4l2m2m") || strings.Contains(pi, "libx264") || strings.Contains(pi, "-preset") {
		t.Errorf("h264_v4l2m2m command: %s", pi)
	}
	cmd := exec.Command(filepath.Join("..", "..", "examples", "camera-h264.sh"))
	cmd.Env = append(os.Environ(), append(env, "ENCODER=mpeg1video")...)
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "ENCODER must be") {
		t.Errorf("a wrong ENCODER: %v %s", err, out)
	}
	// The real ffmpeg knows the Pi's encoder by that name.
	bin := testutil.NeedTool(t, "ffmpeg")
	if out, _ := exec.Command(bin, "-hide_banner", "-h", "encoder=h264_v4l2m2m").CombinedOutput(); !strings.Contains(string(out), "V4L2") {
		t.Logf("this ffmpeg has no h264_v4l2m2m encoder: %s", out)
	}
}

// TestRecordingH264 records, with a destination's file option, a stream of
// a real libx264 camera and a real AAC microphone through the whole
// vw stream, with a mute and an unmute. The recording is what a user's tools
// accept: one program of one h264 and one aac track, decoded with no error
// and no continuity error, audio and video on one clock. The mute keeps the
// audio track (the PMT never changes after both feeds joined) and makes it
// silent; after the unmute the tone is back.
func TestRecordingH264(t *testing.T) {
	r := startRecorded(t)
	stream, v := r.stream, r.v

	ffmpegH264(t, "video", "http://"+stream.addr+"/ts/video0")
	v.grows(t, 60_000, 15*time.Second, "video alone")
	ffmpegH264(t, "audio", "http://"+stream.addr+"/ts/audio0")
	v.grows(t, 100_000, 15*time.Second, "video and audio")
	r.muteUnmute(t, 100_000, 15*time.Second)
	path := r.stop(t)
	rep := tscheck.CheckFile(t, path, tscheck.Want{Video: 1, Audio: 1, VideoCodec: "h264", AudioCodec: "aac"})
	if err := rep.PCRMonotonic(); err != nil || len(rep.PCR) == 0 {
		t.Fatalf("PCR: %v (%d seen)", err, len(rep.PCR))
	}
	if len(rep.PMTVersions) != 2 || rep.OffPMT != 0 {
		t.Fatalf("PMT versions %v, want two (video, then video and audio) and no change at the mute; %d packets off the PMT",
			rep.PMTVersions, rep.OffPMT)
	}
	r.checkAVSkew(t, path, rep)
	// The decoded audio: tone, then a silence as long as the mute (about
	// 2 s), then tone again.
	levels := audioLevels(t, path)
	runs := loudRuns(levels)
	t.Logf("audio in 100 ms windows, runs of tone (+) and silence (-): %v", runs)
	if len(runs) != 3 || runs[0] <= 0 || runs[1] > -10 || runs[2] <= 5 {
		t.Fatalf("want tone, a silence of 1 s or more, tone again; got runs %v", runs)
	}
}

// audioLevels decodes the audio of a recording and returns its peak level
// per 100 ms (0 to 1).
func audioLevels(t testing.TB, path string) []float64 {
	t.Helper()
	out, err := exec.Command(testutil.NeedTool(t, "ffmpeg"), "-nostdin", "-v", "error", "-i", path,
		"-map", "0:a", "-f", "s16le", "-ac", "1", "-ar", "48000", "-").Output()
	if err != nil {
		t.Fatalf("decoding the audio: %v", err)
	}
	const window = 4800 * 2
	var levels []float64
	for i := 0; i+window <= len(out); i += window {
		peak := 0
		for j := i; j < i+window; j += 2 {
			v := int(int16(uint16(out[j]) | uint16(out[j+1])<<8))
			peak = max(peak, v, -v)
		}
		levels = append(levels, float64(peak)/32768)
	}
	return levels
}

// loudRuns turns levels into run lengths: positive for windows with sound,
// negative for silent ones (below -60 dB).
func loudRuns(levels []float64) []int {
	var runs []int
	for _, l := range levels {
		d := 1
		if l < 0.001 {
			d = -1
		}
		if len(runs) > 0 && (runs[len(runs)-1] > 0) == (d > 0) {
			runs[len(runs)-1] += d
		} else {
			runs = append(runs, d)
		}
	}
	return runs
}

// probeViewer saves what v has received to a file and reads it with
// ffprobe, as a user's tools would.
func probeViewer(t testing.TB, v *viewer) *tscheck.ProbeInfo {
	t.Helper()
	path := filepath.Join(t.TempDir(), "viewer.ts")
	if err := os.WriteFile(path, v.bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := tscheck.Probe(path)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// feedsListing is GET /api/feeds.
type feedsListing map[string]struct {
	Codecs  []string          `json:"codecs"`
	LeftOut map[string]string `json:"leftOut"`
}

func getFeeds(t testing.TB, stream *proc) feedsListing {
	t.Helper()
	status, body := httpDo(t, "GET", stream.baseURL+"/api/feeds", "")
	var l feedsListing
	if err := json.Unmarshal([]byte(body), &l); status != 200 || err != nil {
		t.Fatalf("GET /api/feeds: %d %s (%v)", status, body, err)
	}
	return l
}

// waitFeeds waits until vw stream lists each feed with its codec, given as
// name, codec, name, codec...
func waitFeeds(t testing.TB, stream *proc, pairs ...string) {
	t.Helper()
	testutil.Eventually(t, 15*time.Second, func() bool {
		l := getFeeds(t, stream)
		for i := 0; i+1 < len(pairs); i += 2 {
			if strings.Join(l[pairs[i]].Codecs, ",") != pairs[i+1] {
				return false
			}
		}
		return true
	}, "feeds %v not listed with those codecs", pairs)
}

// TestMixedCodecsRefused runs a real H.264 camera and a real MP2
// microphone. A rule of the two is refused with 409 and the reason, and
// nothing is stored. A rule naming a microphone that has not started yet is
// accepted; when it starts and sends MP2, it is left out of the stream (the
// stream carries the H.264 video alone) and the feeds listing says why.
func TestMixedCodecsRefused(t *testing.T) {
	testutil.NeedTool(t, "ffprobe")
	stream := streamProc(t)
	ffmpegH264(t, "video", "http://"+stream.addr+"/ts/video0")
	ffmpeg(t, "audio", "http://"+stream.addr+"/ts/audio1")
	waitFeeds(t, stream, "video0", "h264", "audio1", "mp2")

	status, body := httpDo(t, "POST", stream.baseURL+"/api/streams", `{"stream":"front","feeds":["video0","audio1"]}`)
	want := `{"error":"feeds do not mix: feed \"audio1\" is mp2 (MPEG-1/MP2) but feed \"video0\" is h264 (H.264/AAC): a stream is either MPEG-1/MP2 or H.264/AAC"}`
	if status != 409 || body != want {
		t.Fatalf("a mixed rule: %d %s\nwant 409 %s", status, body, want)
	}
	if _, body := httpDo(t, "GET", stream.baseURL+"/api/streams/all", ""); body != "{}" {
		t.Fatalf("a refused rule was stored: %s", body)
	}

	postRule(t, stream, "/api/streams", `{"stream":"front","feeds":["video0","audio2"]}`)
	v := watchURL(t, "ws://"+stream.addr+"/ws/front", nil)
	ffmpeg(t, "audio", "http://"+stream.addr+"/ts/audio2")
	testutil.Eventually(t, 15*time.Second, func() bool {
		return strings.Contains(getFeeds(t, stream)["audio2"].LeftOut["front"], `feed "audio2" is mp2`)
	}, "audio2 not listed as left out of front: %+v", getFeeds(t, stream))
	v.grows(t, 100_000, 15*time.Second, "the stream with the microphone left out")
	p := probeViewer(t, v)
	if got := strings.Join(p.Codecs(), ","); got != "h264" {
		t.Fatalf("the stream carries %q, want the h264 video alone", got)
	}
	if !strings.Contains(stream.logText(), "feed left out of the stream") {
		t.Fatal("no log line says the feed was left out")
	}
}
