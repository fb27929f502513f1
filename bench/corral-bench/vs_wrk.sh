#!/usr/bin/env bash
# The efficiency bar of corral-bench (see main.rs), checked by hand:
# `corral-bench run` against `corral-bench serve http` must reach at least
# the request rate of `wrk -t1 -c50` against the same server, in the same
# session, alternating wrk / corral-bench. The server is pinned to CPU 0,
# both load generators to CPU 1. Prints each round with the CPU seconds of
# the load generator and of the server over the first D-1 seconds (both
# near D-1 means the machine was otherwise quiet).
#
#   cargo build --release && bash bench/corral-bench/vs_wrk.sh [ROUNDS] [SECONDS]
#
# Needs wrk (apt-get install wrk) and python3.
set -euo pipefail
cd "$(dirname "$0")/../.."
B=target/release/corral-bench
ROUNDS=${1:-3}
D=${2:-10}
command -v wrk >/dev/null || { echo "wrk not found: apt-get install wrk" >&2; exit 1; }
LOG=$(mktemp)
$B serve --listen 127.0.0.1:0 --cpus 0 http 2>"$LOG" &
SP=$!
trap 'kill -TERM $SP 2>/dev/null; rm -f "$LOG"' EXIT
for _ in $(seq 100); do grep -q "listening on" "$LOG" && break; sleep 0.05; done
PORT=$(grep -o '[0-9]*$' "$LOG")
cpu() { awk '{print ($14+$15)/100}' "/proc/$1/stat"; }
for i in $(seq "$ROUNDS"); do
  s0=$(cpu $SP)
  taskset -c 1 wrk -t1 -c50 -d"${D}"s "http://127.0.0.1:$PORT/" >"$LOG.wrk" &
  p=$!; sleep $((D - 1)); wc=$(cpu $p); s1=$(cpu $SP); wait $p
  w=$(awk '/Requests\/sec/ {print $2}' "$LOG.wrk")
  s2=$(cpu $SP)
  $B run --cpus 1 -t1 -c50 -d"${D}"s --warmup 0 --json "127.0.0.1:$PORT" >"$LOG.cb" &
  p=$!; sleep $((D - 1)); cc=$(cpu $p); s3=$(cpu $SP); wait $p
  c=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["rps"])' "$LOG.cb")
  echo "round $i: wrk $w req/s (cpu ${wc}s, server $(python3 -c "print(round($s1-$s0,2))")s)  corral-bench $c req/s (cpu ${cc}s, server $(python3 -c "print(round($s3-$s2,2))")s)"
done
rm -f "$LOG.wrk" "$LOG.cb"
