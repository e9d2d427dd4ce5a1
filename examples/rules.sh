#!/bin/sh
# Sets up one lab's rules on vw stream: the stream $STREAM made of the camera
# and microphone feeds, pushed to the relay at $RELAY as /in/$LAB/$STREAM.
# Viewers then open $RELAY's /play/$LAB/$STREAM (http instead of ws).
#
#   RELAY=wss://relay.example.com LAB=lab1 TOKEN=$(cat lab1.token) ./rules.sh
set -eu
VW=${VW:-http://127.0.0.1:8888}
RELAY=${RELAY:-ws://127.0.0.1:8080}
LAB=${LAB:-lab1}
STREAM=${STREAM:-front}
VIDEO=${VIDEO:-video0}
AUDIO=${AUDIO:-audio0}
AUTH=${VW_API_TOKEN:+Authorization: Bearer $VW_API_TOKEN}

post() {
  curl -sS --fail-with-body -X POST ${AUTH:+-H "$AUTH"} -H 'Content-Type: application/json' "$VW/api/$1" -d "$2"
  echo
}
post streams "{\"stream\":\"$STREAM\",\"feeds\":[\"$VIDEO\",\"$AUDIO\"]}"
post destinations "{\"stream\":\"$STREAM\",\"destination\":\"$RELAY/in/$LAB/$STREAM\",\"id\":\"$STREAM\"${TOKEN:+,\"token\":\"$TOKEN\"}}"
