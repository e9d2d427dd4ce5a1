#!/bin/sh
# A camera feed for vw stream in H.264: the same picture as camera.sh for
# about half the bits, played by the relay's page through the browser's own
# decoder (Media Source Extensions). Pair it with microphone-aac.sh: a stream
# is either MPEG-1/MP2 or H.264/AAC, never a mix.
#
#   DEVICE=/dev/video0 FEED=video0 ./camera-h264.sh
#
# ENCODER picks the encoder: libx264 (software, the default) or, on a
# Raspberry Pi, its hardware encoder, which leaves the CPU free:
#   ENCODER=h264_v4l2m2m ./camera-h264.sh
#
# INPUT replaces the capture options, e.g. a test pattern with no camera:
#   INPUT="-re -f lavfi -i testsrc=size=640x480:rate=25" ./camera-h264.sh
set -eu
VW=${VW:-http://127.0.0.1:8888}
FEED=${FEED:-video0}
DEVICE=${DEVICE:-/dev/video0}
SIZE=${SIZE:-640x480}
RATE=${RATE:-25}
BITRATE=${BITRATE:-500k}
ENCODER=${ENCODER:-libx264}
INPUT=${INPUT:-"-f v4l2 -framerate $RATE -video_size $SIZE -i $DEVICE"}
case "$ENCODER" in
  # veryfast/zerolatency: no frame held back for lookahead or B-frames, so
  # each frame leaves as soon as it is captured; -maxrate/-bufsize cap the
  # rate over about a second, which is what a thin uplink sees.
  libx264) codec="-c:v libx264 -preset veryfast -tune zerolatency -maxrate $BITRATE -bufsize $BITRATE" ;;
  h264_v4l2m2m) codec="-c:v h264_v4l2m2m" ;;
  *) echo "ENCODER must be libx264 or h264_v4l2m2m, not $ENCODER" >&2; exit 2 ;;
esac
# -g/-keyint_min/-sc_threshold 0: a keyframe every second and only then, so
# a new viewer sees a picture within a second and the rate stays even.
# -bf 0: no B-frames, which would delay every frame. yuv420p: the pixel
# format every browser decodes. -muxdelay 0.001: send each frame at once.
# shellcheck disable=SC2086
exec ffmpeg -nostdin -v "${LOGLEVEL:-error}" $INPUT \
  $codec -b:v "$BITRATE" -g "$RATE" -keyint_min "$RATE" -sc_threshold 0 -bf 0 \
  -pix_fmt yuv420p -s "$SIZE" \
  -f mpegts -muxdelay 0.001 ${HEADERS:+-headers "$HEADERS"} "$VW/ts/$FEED"
