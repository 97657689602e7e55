#!/usr/bin/env bash
# Read-path load benchmark against `ticketing up` on loopback, with wrk.
# Measures, in one run: GET /healthz (the floor of any handler here), GET /api/tickets with 100
# tickets cached and with the cache off, and GET /api/tickets/:id cached.
# Usage: scripts/bench-reads.sh [seconds per endpoint, default 10]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
duration=${1:-10}

bash scripts/services.sh
if ! command -v wrk >/dev/null; then
  if [ "$(id -u)" -eq 0 ]; then
    echo "Installing wrk (Debian package) for the load generator…"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends wrk >/dev/null
  else
    echo "wrk is missing: run 'sudo apt-get install wrk' and try again" >&2
    exit 1
  fi
fi
echo "Building ticketing (release)…"
cargo build --release --locked -p ticketing
bin=target/release/ticketing

run_dir=$(mktemp -d)
# `start` runs in a command substitution (a subshell), so it records each server's pid in a
# file: a variable set there would never reach this shell, and the servers would outlive it.
cleanup() {
  if [ -f "$run_dir/pids" ]; then
    while read -r pid; do kill "$pid" 2>/dev/null || true; done <"$run_dir/pids"
    while read -r pid; do
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    done <"$run_dir/pids"
  fi
  rm -rf "$run_dir"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start NAME CACHE_ENABLED → prints the base URL
start() {
  local name=$1 cache=$2 port
  port=$(free_port)
  TICKETING_NAMESPACE="bench_${name}" TICKETING_ADDR="127.0.0.1:${port}" CACHE_ENABLED=$cache \
    RUST_LOG=warn RATE_LIMIT_PER_MINUTE=0 "$bin" up >"$run_dir/$name.log" 2>&1 &
  echo $! >>"$run_dir/pids"
  for _ in $(seq 1 100); do
    if curl -fs "http://127.0.0.1:${port}/readyz" >/dev/null 2>&1; then
      echo "http://127.0.0.1:${port}"
      return
    fi
    sleep 0.1
  done
  echo "ticketing ($name) did not start; see its log:" >&2
  cat "$run_dir/$name.log" >&2
  exit 1
}

seed() {
  local base=$1 jar="$run_dir/cookies-$RANDOM"
  curl -fs -c "$jar" -H 'content-type: application/json' \
    -d "{\"email\":\"seller$RANDOM@example.com\",\"password\":\"s3cret-pass\"}" "$base/api/users/signup" >/dev/null
  for i in $(seq 1 100); do
    curl -fs -b "$jar" -H 'content-type: application/json' \
      -d "{\"title\":\"Benchmark ticket $i\",\"price\":\"$i.50\"}" "$base/api/tickets" >/dev/null
  done
  curl -fs "$base/api/tickets?limit=1" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])'
}

cached=$(start cached true)
uncached=$(start uncached false)
echo "Seeding 100 tickets into each instance…"
ticket=$(seed "$cached")
seed "$uncached" >/dev/null

measure() {
  local label=$1 url=$2
  curl -fs "$url" >/dev/null # warm
  wrk -t2 -c64 -d"${duration}s" --latency "$url" >"$run_dir/wrk.txt"
  python3 - "$label" "$run_dir/wrk.txt" <<'PY'
import re, sys
label, path = sys.argv[1], sys.argv[2]
text = open(path).read()
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
def pct(p):
    m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
    value, unit = float(m.group(1)), m.group(2)
    return value * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
print(f"{label:<34} {rps:>10.0f} req/s   p50 {pct(50):7.3f} ms   p99 {pct(99):7.3f} ms"
      + (f"   NON-2XX: {errors.group(1)}" if errors else ""))
PY
}

echo "wrk -t2 -c64 -d${duration}s, server and load sharing this machine's cores:"
measure "GET /healthz (floor)" "$cached/healthz"
measure "GET /api/tickets (100, cached)" "$cached/api/tickets"
measure "GET /api/tickets (100, cache off)" "$uncached/api/tickets"
measure "GET /api/tickets/:id (cached)" "$cached/api/tickets/$ticket"
curl -fs "$cached/metrics" | grep -E '^cache_(hits|misses|hit_ratio)' || true
