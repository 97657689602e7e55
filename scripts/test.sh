#!/usr/bin/env bash
# Run the whole test suite: start the backing services, then formatting,
# lints and tests. Extra arguments go to the test runner
# (cargo nextest run when installed, cargo test otherwise).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

export RUST_BACKTRACE=1

echo "==> services"
bash scripts/services.sh

echo "==> browser (Debian chromium + chromium-driver for the web UI tests)"
bash scripts/browser-deps.sh

if ! command -v cargo >/dev/null; then
  echo "ERROR: cargo not found. Install Rust (https://rustup.rs) and run this again." >&2
  exit 1
fi

failed=()

run_step() {
  local name=$1
  shift
  echo "==> ${name}"
  if ! "$@"; then
    echo "==> ${name}: FAILED" >&2
    failed+=("${name}")
  fi
}

if cargo fmt --version >/dev/null 2>&1; then
  run_step fmt cargo fmt --all -- --check
else
  echo "==> fmt: skipped (rustfmt not installed)"
fi

if cargo clippy --version >/dev/null 2>&1; then
  run_step clippy cargo clippy --workspace --all-targets --locked -- -D warnings
else
  echo "==> clippy: skipped (clippy not installed)"
fi

if cargo nextest --version >/dev/null 2>&1; then
  run_step tests cargo nextest run --workspace --locked --no-fail-fast "$@"
else
  run_step tests cargo test --workspace --locked --no-fail-fast "$@"
fi

if ((${#failed[@]} > 0)); then
  echo "==> FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "==> all steps passed"
