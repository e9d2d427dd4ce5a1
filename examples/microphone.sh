#!/bin/sh
# A microphone feed for vw stream: captures ALSA audio and POSTs it, as
# MPEG-TS with MP2 audio at 44.1 kHz (jsmpeg's decoder takes only 32, 44.1 or
# 48 kHz), to vw stream's /ts/$FEED.
#
#   DEVICE=hw:1 FEED=audio0 ./microphone.sh
#
# INPUT replaces the capture options, e.g. a tone with no microphone:
#   INPUT="-re -f lavfi -i sine=frequency=440:sample_rate=44100" ./microphone.sh
set -eu
VW=${VW:-http://127.0.0.1:8888}
FEED=${FEED:-audio0}
DEVICE=${DEVICE:-default}
BITRATE=${BITRATE:-64k}
INPUT=${INPUT:-"-f alsa -ac 1 -i $DEVICE"}
# shellcheck disable=SC2086
exec ffmpeg -nostdin -v "${LOGLEVEL:-error}" $INPUT \
  -c:a mp2 -b:a "$BITRATE" -ar 44100 \
  -f mpegts -muxdelay 0.001 ${HEADERS:+-headers "$HEADERS"} "$VW/ts/$FEED"
