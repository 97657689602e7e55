#!/usr/bin/env bash
# Benchmarks, against the local PostgreSQL, Redis and NATS (started if missing).
# Figures are printed, never asserted: compare them with the reference lines in the same run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/services.sh

echo "==> events: outbox → relay → JetStream → consumer"
cargo bench --locked -p ticketing-common --bench events

echo "==> sign-up latency (argon2id + PostgreSQL, over HTTP)"
cargo bench --locked -p ticketing-auth --bench signup

echo "==> expiration queue lateness (100,000 jobs due over 10 s, two workers)"
cargo bench --locked -p ticketing-expiration --bench lateness
