#!/usr/bin/env bash
# Flash-sale benchmark: 2,000 signed-in buyers race for 100 tickets over HTTP against
# `ticketing up` on loopback. Prints orders/s and p50/p99 latency, and checks 100 sold,
# 0 oversold, 0 5xx.   Usage: scripts/bench-flash-sale.sh [BUYERS TICKETS]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/services.sh
echo "Building ticketing and the benchmark (release)…"
cargo build --release --locked -p ticketing
cargo bench --locked -p ticketing --bench flash_sale --no-run

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
JWT_KEY=$(head -c 48 /dev/urandom | base64 | tr -d '\n/+=')
export JWT_KEY
log=$(mktemp)
TICKETING_NAMESPACE=bench_flash TICKETING_ADDR="127.0.0.1:${port}" RUST_LOG=warn RATE_LIMIT_PER_MINUTE=0 \
  target/release/ticketing up >"$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:${port}/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fs "http://127.0.0.1:${port}/readyz" >/dev/null || { cat "$log"; exit 1; }
cargo bench --locked -p ticketing --bench flash_sale -- "http://127.0.0.1:${port}" "$@"
