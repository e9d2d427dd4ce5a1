#!/bin/sh
# Mutes or unmutes a stream by changing its rule: "off" drops the audio
# feed from the stream, "on" puts it back. ffmpeg is never touched; the
# answer comes once the change is in force.
#
#   ./mute.sh on     # mute: video only
#   ./mute.sh off    # unmute: video and audio
set -eu
VW=${VW:-http://127.0.0.1:8888}
STREAM=${STREAM:-front}
VIDEO=${VIDEO:-video0}
AUDIO=${AUDIO:-audio0}
AUTH=${VW_API_TOKEN:+Authorization: Bearer $VW_API_TOKEN}
case "${1:-}" in
  on) feeds="\"$VIDEO\"" ;;
  off) feeds="\"$VIDEO\",\"$AUDIO\"" ;;
  *) echo "usage: $0 on|off" >&2; exit 2 ;;
esac
curl -sS --fail-with-body -X POST ${AUTH:+-H "$AUTH"} -H 'Content-Type: application/json' "$VW/api/streams" -d "{\"stream\":\"$STREAM\",\"feeds\":[$feeds]}"
echo
