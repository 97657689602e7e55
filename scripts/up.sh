#!/usr/bin/env bash
# Start the whole Ticketing system: the backing services (PostgreSQL, Redis,
# NATS with JetStream), then the app itself. Extra arguments go to `ticketing up`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/services.sh

if ! command -v cargo >/dev/null; then
  echo "ERROR: cargo not found. Install Rust (https://rustup.rs) and run this again." >&2
  exit 1
fi

echo "==> building and starting ticketing (cargo run --release; the first build takes a few minutes)"
exec cargo run --release --locked -p ticketing -- up "$@"
