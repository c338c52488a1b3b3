#!/usr/bin/env bash
# make demo: the agent end to end on this machine, with nothing installed. sentinel-sim plays
# the outside world: the city's platform (HTTP on 127.0.0.1:18700), a serial QR scanner (a
# pseudo-terminal at .demo/ttyQR, one scan a second) and an MQTT broker (127.0.0.1:18831).
# The agent runs configs/demo.yaml with a fake barrier and prints one line per passage.
# Stops on Ctrl-C, or after DEMO_SECONDS seconds when set.
#
# DEMO_STYLE=pillar: a face-only pillar instead (the pillar build, bin/sentinel-pillar, with
# OpenCV's detector): sentinel-sim faces writes the scenes and an enrolled person from Debian's
# test photos, sentinel-sim camera plays them as an IP camera (MJPEG on 127.0.0.1:18081, a
# person in view for 5 s every 17 s), and the agent runs configs/demo-pillar.yaml: one passage
# by face each time the person walks up, none for the empty wall or the coffee cup.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=bin
dir=.demo
rm -rf "$dir"; mkdir -p "$dir"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 0' INT TERM

style=${DEMO_STYLE:-gate}
case "$style" in gate|pillar) ;; *) echo "demo: DEMO_STYLE must be gate or pillar, got '$style'" >&2; exit 2 ;; esac
ports="18700 18831"; [ "$style" = pillar ] && ports="$ports 18081"
for port in $ports; do
  if (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; then
    echo "demo: port $port on 127.0.0.1 is in use (an earlier demo still running?); stop it and retry" >&2
    exit 1
  fi
done

"$bin/sentinel-sim" broker --listen 127.0.0.1:18831 2>"$dir/broker.log" & pids+=($!)
if [ "$style" = pillar ]; then
  [ -x "$bin/sentinel-pillar" ] || { echo "demo: $bin/sentinel-pillar is missing: run DEMO_STYLE=pillar make demo (it builds it)" >&2; exit 1; }
  "$bin/sentinel-sim" faces --out "$dir/faces" 2>"$dir/faces.log" || { cat "$dir/faces.log" >&2; exit 1; }
  "$bin/sentinel-sim" api --listen 127.0.0.1:18700 --population "$dir/faces/people.csv" 2>"$dir/api.log" & pids+=($!)
  "$bin/sentinel-sim" camera --listen 127.0.0.1:18081 --script "$dir/faces/script.txt" --loop --fps 15 2>"$dir/camera.log" & pids+=($!)
  ready() { grep -q "listening on" "$dir/api.log" && grep -q "listening on" "$dir/broker.log" && grep -q "listening on" "$dir/camera.log"; }
  agent_bin="$bin/sentinel-pillar"; config=configs/demo-pillar.yaml
  what="camera http://127.0.0.1:18081/stream (a person every 17 s)"
else
  "$bin/sentinel-sim" population --out "$dir/population.csv" --tokens-out "$dir/tokens.txt" 2>"$dir/population.log"
  "$bin/sentinel-sim" api --listen 127.0.0.1:18700 --population "$dir/population.csv" 2>"$dir/api.log" & pids+=($!)
  "$bin/sentinel-sim" scan --port "$dir/ttyQR" --tokens "$dir/tokens.txt" --rate 1 --count 1000000 2>"$dir/scan.log" & pids+=($!)
  ready() { grep -q "listening on" "$dir/api.log" && grep -q "listening on" "$dir/broker.log" && [ -e "$dir/ttyQR" ]; }
  agent_bin="$bin/sentinel"; config=configs/demo.yaml
  what="scanner $dir/ttyQR"
fi

# Wait until the platform, the broker and the virtual scanner or camera are up.
for _ in $(seq 100); do
  if ready; then break; fi
  sleep 0.05
done
ready || { echo "demo: the simulator did not come up; see $dir/*.log" >&2; cat "$dir"/*.log >&2; exit 1; }

echo "Sentinel demo ($style): platform 127.0.0.1:18700, broker 127.0.0.1:18831, $what."
echo "Verdict screen: http://127.0.0.1:8080/  Metrics: http://127.0.0.1:9464/metrics"
echo "One line per passage (masked subject, verdict, reason, gate, delivered). Agent log: $dir/agent.log. Ctrl-C stops."
"$agent_bin" run --config "$config" --console 2>"$dir/agent.log" & agent=$!; pids+=($agent)
if [ -n "${DEMO_SECONDS:-}" ]; then
  ( sleep "$DEMO_SECONDS"; kill -TERM "$agent" 2>/dev/null ) & pids+=($!)
fi
rc=0; wait "$agent" || rc=$?
if [ $rc -ne 0 ]; then
  echo "demo: the agent exited with status $rc; its log:" >&2
  tail -20 "$dir/agent.log" >&2
  exit $rc
fi
echo "demo: stopped. $(grep -c 'msg=passage' "$dir/agent.log" || true) passages; the queue is in $dir/queue.db."
