package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// The codecs benchmark answers what H.264 saves over MPEG-1 for the same
// picture: for each test source, the lowest bit rate at which each encoder,
// with the README's settings, keeps SSIM (ffmpeg's ssim filter, against the
// source) at the target, found by bisection on a log scale; the bytes per
// second of the MPEG-TS it sends at that rate (what a relay's egress
// carries); and the encoder's CPU time per second of video, the cost on
// the lab host. The source is rendered once to raw video first, so that the
// encoder's CPU time is its own.

type codecsConfig struct {
	duration time.Duration // clip length
	size     string
	rate     int     // frames per second
	ssim     float64 // the quality to reach
	steps    int     // bisection steps per encoder and source
	sources  []string
}

// encoder is one codec with the README's settings; args gets the bit rate
// in kbit/s and the GOP (one second).
type encoder struct {
	name string
	args func(kbps, gop int) []string
}

var encoders = []encoder{
	{"mpeg1video", func(kbps, gop int) []string {
		return []string{"-c:v", "mpeg1video", "-b:v", strconv.Itoa(kbps) + "k", "-bf", "0", "-g", strconv.Itoa(gop)}
	}},
	{"h264", func(kbps, gop int) []string {
		r := strconv.Itoa(kbps) + "k"
		return []string{"-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency",
			"-b:v", r, "-maxrate", r, "-bufsize", r, "-g", strconv.Itoa(gop), "-keyint_min", strconv.Itoa(gop),
			"-sc_threshold", "0", "-bf", "0", "-pix_fmt", "yuv420p"}
	}},
}

func runCodecs(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newBenchFlags("codecs", stderr)
	var cfg codecsConfig
	var sources string
	fs.DurationVar(&cfg.duration, "duration", 4*time.Second, "clip length")
	fs.StringVar(&cfg.size, "size", "640x480", "picture size")
	fs.IntVar(&cfg.rate, "rate", 25, "frames per second")
	fs.Float64Var(&cfg.ssim, "ssim", 0.95, "the SSIM (All) to reach")
	fs.IntVar(&cfg.steps, "steps", 8, "bisection steps per encoder and source (16 kbit/s to 8 Mbit/s)")
	fs.StringVar(&sources, "sources", "mandelbrot,testsrc", "lavfi sources, comma-separated")
	fs.Short("duration", "2s")
	fs.Short("size", "320x240")
	fs.Short("steps", "6")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg.sources = strings.Split(sources, ",")
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		return errors.New("codecs needs ffmpeg (make deps)")
	}
	dir, err := os.MkdirTemp("", "vwbench-codecs-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	fmt.Fprintf(stdout, "\nBit rate at SSIM ≥ %.2f against the source, README encoder settings, %s at %d fps, %v clips\n\n",
		cfg.ssim, cfg.size, cfg.rate, cfg.duration)
	tw := tabwriter.NewWriter(stdout, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "source\tencoder\t-b:v\tMPEG-TS bytes/s\tSSIM\tencoder CPU per stream\tH.264 / MPEG-1")
	for _, src := range cfg.sources {
		raw := filepath.Join(dir, src+".yuv")
		if err := renderSource(ctx, cfg, src, raw); err != nil {
			return err
		}
		var base float64
		for _, enc := range encoders {
			r, err := cheapest(ctx, cfg, enc, raw, dir)
			if err != nil {
				return fmt.Errorf("%s, %s: %w", src, enc.name, err)
			}
			ratio := "—"
			if base == 0 {
				base = r.bytesPerSec
			} else {
				ratio = fmt.Sprintf("%.2f", r.bytesPerSec/base)
			}
			reached := ""
			if r.ssim < cfg.ssim {
				reached = " (not reached at the highest rate)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%d kbit/s\t%.0f KB/s\t%.3f%s\t%.0f%% of a core\t%s\n",
				src, enc.name, r.kbps, r.bytesPerSec/1000, r.ssim, reached, r.cpu*100, ratio)
		}
		_ = os.Remove(raw)
	}
	return tw.Flush()
}

// renderSource writes the lavfi source src as raw yuv420p.
func renderSource(ctx context.Context, cfg codecsConfig, src, out string) error {
	lavfi := fmt.Sprintf("%s=size=%s:rate=%d", src, cfg.size, cfg.rate)
	_, err := ffmpegRun(ctx, "-f", "lavfi", "-i", lavfi, "-t", seconds(cfg.duration),
		"-pix_fmt", "yuv420p", "-f", "rawvideo", "-y", out)
	return err
}

type encodeResult struct {
	kbps        int
	bytesPerSec float64
	ssim        float64
	cpu         float64 // encoder CPU seconds per second of video
}

// cheapest bisects the bit rate, on a log scale between 16 kbit/s and
// 8 Mbit/s, for the lowest that reaches the SSIM target.
func cheapest(ctx context.Context, cfg codecsConfig, enc encoder, raw, dir string) (encodeResult, error) {
	out := filepath.Join(dir, enc.name+".ts")
	lo, hi := math.Log(16), math.Log(8000)
	var best encodeResult
	for range cfg.steps {
		kbps := int(math.Round(math.Exp((lo + hi) / 2)))
		r, err := encodeAt(ctx, cfg, enc, raw, out, kbps)
		if err != nil {
			return r, err
		}
		if r.ssim >= cfg.ssim {
			best, hi = r, math.Log(float64(kbps))
		} else {
			lo = math.Log(float64(kbps))
		}
	}
	if best.kbps == 0 {
		return encodeAt(ctx, cfg, enc, raw, out, 8000)
	}
	return best, nil
}

var ssimRE = regexp.MustCompile(`All:([0-9.]+)`)

// encodeAt encodes raw at kbps into MPEG-TS as a feed would, then measures
// the result's SSIM against raw.
func encodeAt(ctx context.Context, cfg codecsConfig, enc encoder, raw, out string, kbps int) (encodeResult, error) {
	r := encodeResult{kbps: kbps}
	args := []string{"-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", cfg.size, "-r", strconv.Itoa(cfg.rate), "-i", raw}
	args = append(args, enc.args(kbps, cfg.rate)...)
	args = append(args, "-f", "mpegts", "-muxdelay", "0.001", "-y", out)
	cpu, err := ffmpegRun(ctx, args...)
	if err != nil {
		return r, err
	}
	r.cpu = cpu.Seconds() / cfg.duration.Seconds()
	fi, err := os.Stat(out)
	if err != nil {
		return r, err
	}
	r.bytesPerSec = float64(fi.Size()) / cfg.duration.Seconds()
	var errOut bytes.Buffer
	cmd := exec.CommandContext(ctx, "ffmpeg", "-nostdin", "-hide_banner", "-i", out,
		"-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", cfg.size, "-r", strconv.Itoa(cfg.rate), "-i", raw,
		"-lavfi", "[0:v][1:v]ssim", "-f", "null", "-")
	cmd.Stderr = &errOut
	if err := cmd.Run(); err != nil {
		return r, fmt.Errorf("ssim: %w: %s", err, lastLine(errOut.String()))
	}
	m := ssimRE.FindStringSubmatch(errOut.String())
	if m == nil {
		return r, fmt.Errorf("ssim: no figure in ffmpeg's output: %s", lastLine(errOut.String()))
	}
	r.ssim, err = strconv.ParseFloat(m[1], 64)
	return r, err
}

// ffmpegRun runs ffmpeg and returns its CPU time (user and system).
func ffmpegRun(ctx context.Context, args ...string) (time.Duration, error) {
	var errOut bytes.Buffer
	cmd := exec.CommandContext(ctx, "ffmpeg", append([]string{"-nostdin", "-v", "error"}, args...)...)
	cmd.Stderr = &errOut
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("ffmpeg %s: %w: %s", strings.Join(args, " "), err, lastLine(errOut.String()))
	}
	return cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), nil
}

func seconds(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', 3, 64) }

func lastLine(s string) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	return l[len(l)-1]
}
