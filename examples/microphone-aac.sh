#!/bin/sh
# A microphone feed for vw stream in AAC, for a stream whose camera is
# H.264 (camera-h264.sh). Captures ALSA audio and POSTs it, as MPEG-TS, to
# vw stream's /ts/$FEED.
#
#   DEVICE=hw:1 FEED=audio0 ./microphone-aac.sh
#
# INPUT replaces the capture options, e.g. a tone with no microphone:
#   INPUT="-re -f lavfi -i sine=frequency=440:sample_rate=48000" ./microphone-aac.sh
set -eu
VW=${VW:-http://127.0.0.1:8888}
FEED=${FEED:-audio0}
DEVICE=${DEVICE:-default}
BITRATE=${BITRATE:-64k}
INPUT=${INPUT:-"-f alsa -ac 1 -i $DEVICE"}
# 48 kHz: what browsers' audio runs at, so nothing is resampled on the way.
# shellcheck disable=SC2086
exec ffmpeg -nostdin -v "${LOGLEVEL:-error}" $INPUT \
  -c:a aac -b:a "$BITRATE" -ar 48000 \
  -f mpegts -muxdelay 0.001 ${HEADERS:+-headers "$HEADERS"} "$VW/ts/$FEED"
