#!/usr/bin/env bash
# The whole path on one machine: vw relay, vw stream, a camera feed and a
# microphone feed (test patterns unless CAMERA=/dev/video0 and MIC=hw:1 are
# given), the rules that join them, and the URL to open. Ctrl-C stops
# everything it started.
#
#   make demo                       # test pattern and tone
#   CAMERA=/dev/video0 make demo    # a real camera
#   RELAY_PORT=9080 STREAM_PORT=9888 make demo
#   make demo CLUSTER=3             # three clustered relays on RELAY_PORT, +1, +2
#                                   # (routes on CLUSTER_PORT, +1, +2); vw stream
#                                   # pushes to the first, the URL is the last's
set -euo pipefail
cd "$(dirname "$0")/.."

VW=${VW:-./bin/vw}
RELAY_PORT=${RELAY_PORT:-8080}
STREAM_PORT=${STREAM_PORT:-8888}
CLUSTER=${CLUSTER:-1}
CLUSTER_PORT=${CLUSTER_PORT:-6222}
RELAY=127.0.0.1:$RELAY_PORT
STREAM=127.0.0.1:$STREAM_PORT
if ! [ "$CLUSTER" -ge 1 ] 2>/dev/null; then
  echo "CLUSTER must be a number of relays (1 or more), not $CLUSTER" >&2
  exit 1
fi
LAST_PORT=$((RELAY_PORT + CLUSTER - 1))
work=$(mktemp -d)
pids=()

stop() {
  trap - INT TERM EXIT
  echo
  echo "stopping..."
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  echo "stopped; logs are in $work"
  exit 0
}
trap stop INT TERM EXIT

ports=("$STREAM_PORT")
for i in $(seq 0 $((CLUSTER - 1))); do
  ports+=($((RELAY_PORT + i)))
  [ "$CLUSTER" -gt 1 ] && ports+=($((CLUSTER_PORT + i)))
done
for port in "${ports[@]}"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "port $port is in use: set RELAY_PORT / STREAM_PORT / CLUSTER_PORT" >&2
    exit 1
  fi
done

wait_for() { # url
  for _ in $(seq 100); do
    curl -sf -o /dev/null "$1" && return 0
    sleep 0.1
  done
  echo "timed out waiting for $1; logs in $work" >&2
  exit 1
}

if [ "$CLUSTER" -eq 1 ]; then
  VW_RELAY_LISTEN=":$RELAY_PORT" "$VW" relay >"$work/relay.log" 2>&1 &
  pids+=($!)
  wait_for "http://$RELAY/stats?format=json"
else
  # Every relay of a cluster shares one secret; each joins through the first.
  head -c 32 /dev/urandom | base64 >"$work/cluster.secret"
  for i in $(seq 0 $((CLUSTER - 1))); do
    routes=""
    [ "$i" -gt 0 ] && routes="nats://127.0.0.1:$CLUSTER_PORT"
    VW_RELAY_LISTEN=":$((RELAY_PORT + i))" VW_RELAY_NODE="relay$((i + 1))" \
      VW_RELAY_CLUSTER_LISTEN="127.0.0.1:$((CLUSTER_PORT + i))" VW_RELAY_CLUSTER_ROUTES="$routes" \
      VW_RELAY_CLUSTER_SECRET_FILE="$work/cluster.secret" \
      "$VW" relay >"$work/relay$((i + 1)).log" 2>&1 &
    pids+=($!)
    wait_for "http://127.0.0.1:$((RELAY_PORT + i))/stats?format=json"
  done
  # Until the last relay sees every other one up.
  for _ in $(seq 200); do
    up=$(curl -sf "http://127.0.0.1:$LAST_PORT/stats?format=json" | grep -c '"up": true' || true)
    [ "$up" -ge $((CLUSTER - 1)) ] && break
    sleep 0.1
  done
fi

VW_PORT=$STREAM_PORT VW_API="ws://$RELAY/bi/demo/api" VW_STATE="$work/rules.json" \
  VW_RECORDINGS="$work/recordings" "$VW" stream >"$work/stream.log" 2>&1 &
pids+=($!)
wait_for "http://$STREAM/healthcheck"

curl -sf -X POST "http://$STREAM/api/streams" -d '{"stream":"demo/front","feeds":["video0","audio0"]}' >/dev/null
curl -sf -X POST "http://$STREAM/api/destinations" \
  -d "{\"stream\":\"demo/front\",\"destination\":\"ws://$RELAY/in/demo/front\",\"id\":\"front\"}" >/dev/null

if [ -n "${CAMERA:-}" ]; then
  video=(-f v4l2 -framerate 25 -video_size 640x480 -i "$CAMERA")
else
  video=(-re -f lavfi -i "testsrc=size=640x480:rate=25")
fi
if [ -n "${MIC:-}" ]; then
  audio=(-f alsa -ac 1 -i "$MIC")
else
  audio=(-re -f lavfi -i "sine=frequency=440:sample_rate=44100")
fi
ffmpeg -nostdin -v error "${video[@]}" -c:v mpeg1video -b:v 1000k -bf 0 -g 25 \
  -f mpegts -muxdelay 0.001 "http://$STREAM/ts/video0" >"$work/camera.log" 2>&1 &
pids+=($!)
ffmpeg -nostdin -v error "${audio[@]}" -c:a mp2 -b:a 64k -ar 44100 \
  -f mpegts -muxdelay 0.001 "http://$STREAM/ts/audio0" >"$work/microphone.log" 2>&1 &
pids+=($!)

cat <<EOT

  vw demo is running$([ "$CLUSTER" -gt 1 ] && echo " on $CLUSTER clustered relays (vw stream pushes to the first, on :$RELAY_PORT)"). Open:

    http://localhost:$LAST_PORT/play/demo/front

  (every live stream: http://localhost:$LAST_PORT/ , relay stats: http://localhost:$LAST_PORT/stats)

  Try, in another terminal:
    curl -X POST localhost:$STREAM_PORT/api/streams -d '{"stream":"demo/front","feeds":["video0"]}'            # mute
    curl -X POST localhost:$STREAM_PORT/api/streams -d '{"stream":"demo/front","feeds":["video0","audio0"]}'   # unmute
    websocat ws://localhost:$RELAY_PORT/bi/demo/api     # then type {"verb":"list","what":"stream","which":"all"}

  Logs: $work   Ctrl-C stops everything.

EOT
# Stop when any child dies, so a failure is not hidden behind a running demo.
wait -n "${pids[@]}" || true
echo "a demo process exited early:" >&2
tail -n 5 "$work"/*.log >&2
