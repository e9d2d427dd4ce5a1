#!/bin/sh
# A camera feed for vw stream: captures a V4L2 camera and POSTs it, as
# MPEG-TS with MPEG-1 video (what jsmpeg plays), to vw stream's /ts/$FEED.
# Runs until ffmpeg stops; let systemd restart it (see systemd/).
#
#   DEVICE=/dev/video0 FEED=video0 ./camera.sh
#
# INPUT replaces the capture options, e.g. a test pattern with no camera:
#   INPUT="-re -f lavfi -i testsrc=size=640x480:rate=25" ./camera.sh
set -eu
VW=${VW:-http://127.0.0.1:8888}
FEED=${FEED:-video0}
DEVICE=${DEVICE:-/dev/video0}
SIZE=${SIZE:-640x480}
RATE=${RATE:-25}
BITRATE=${BITRATE:-1000k}
INPUT=${INPUT:-"-f v4l2 -framerate $RATE -video_size $SIZE -i $DEVICE"}
# -bf 0: jsmpeg decodes no B-frames. -muxdelay 0.001: send each frame at
# once rather than buffering 0.7 s. -g: a keyframe every second, so a new
# viewer sees a picture within a second.
# shellcheck disable=SC2086
exec ffmpeg -nostdin -v "${LOGLEVEL:-error}" $INPUT \
  -c:v mpeg1video -b:v "$BITRATE" -bf 0 -g "$RATE" -s "$SIZE" \
  -f mpegts -muxdelay 0.001 ${HEADERS:+-headers "$HEADERS"} "$VW/ts/$FEED"
