#!/usr/bin/env bash
# Run the whole test suite: start the backing services, then formatting,
# lints and tests; then the end-to-end suite again against the distributed
# stack (scripts/stack: every component its own process, replicas, nginx in
# front). Extra arguments go to the first test run (cargo nextest run when
# installed, cargo test otherwise). TEST_SKIP_STACK=1 skips the stack run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

export RUST_BACKTRACE=1

echo "==> services"
bash scripts/services.sh

echo "==> browser (Debian chromium + chromium-driver for the web UI tests)"
bash scripts/browser-deps.sh

echo "==> schemathesis (fuzzes the OpenAPI document in the tests)"
bash scripts/schemathesis.sh

echo "==> localstripe (a Stripe emulator the payments tests charge through)"
bash scripts/localstripe.sh --install

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

# The end-to-end suite (crates/ticketing/tests/e2e.rs) against a distributed stack of its
# own: a fresh namespace, a random session key, orders that live 25 s (well over
# JetStream's 10 s ack wait, so the kill test sees every order reserved before it expires).
stack_e2e() {
  set -o pipefail
  local ns key port url status=0
  ns="stack_e2e_$(date +%s)_$$"
  key=$(head -c 48 /dev/urandom | base64 -w0)
  port=$(free_port)
  # The binary the test build made (building it alone would compile the dependencies again
  # without the test features).
  cargo test --locked -p ticketing --test e2e --no-run || return 1
  export STACK_DIR="${PWD}/target/stack-e2e"
  # A stack an interrupted run left behind goes first.
  bash scripts/stack down >/dev/null && bash scripts/stack purge >/dev/null || true
  export STACK_PORT="${port}" TICKETING_BIN="${PWD}/target/debug/ticketing"
  # The bursts place 50 orders per buyer: no cap on unpaid orders per buyer here.
  export TICKETING_NAMESPACE="${ns}" JWT_KEY="${key}" EXPIRATION_WINDOW_SECONDS=25 RATE_LIMIT_PER_MINUTE=0
  export MAX_LIVE_ORDERS_PER_USER=0
  # The operator the end-to-end tests sign in as (ticketing_common::testing::OPERATOR_EMAIL).
  export ADMIN_EMAILS=operator@example.com
  # Whatever happens from here (a failure, Ctrl-C, a CI timeout), stop the stack and drop
  # what it made; on failure show the end of every process's log first.
  trap 'exit 143' INT TERM
  trap 'stack_cleanup $?' EXIT
  # (Not `tee /dev/stderr`: reopening a log file that stderr points to truncates it.)
  bash scripts/stack up >"${STACK_DIR}-up.log" || {
    cat "${STACK_DIR}-up.log" >&2
    return 1
  }
  cat "${STACK_DIR}-up.log"
  url=$(tail -n 1 "${STACK_DIR}-up.log")
  export TICKETING_E2E_URL="${url}" TICKETING_E2E_NAMESPACE="${ns}" TICKETING_E2E_JWT_KEY="${key}"
  export TICKETING_E2E_WINDOW_SECONDS=25 TICKETING_E2E_STACK_DIR="${STACK_DIR}"
  # The kill test SIGKILLs replicas, so it runs alone, after the others.
  if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --locked -p ticketing --test e2e --no-fail-fast -E 'not test(killing)' || status=1
    cargo nextest run --locked -p ticketing --test e2e -E 'test(killing)' || status=1
  else
    cargo test --locked -p ticketing --test e2e -- --skip killing || status=1
    cargo test --locked -p ticketing --test e2e -- killing || status=1
  fi
  return "${status}"
}

stack_cleanup() {
  local status=$1 log
  if ((status != 0)); then
    for log in "${STACK_DIR}"/logs/*.log; do
      [[ -e ${log} ]] || continue
      printf -- '--- last lines of %s ---\n' "${log}"
      tail -n 15 "${log}"
    done
  fi
  bash scripts/stack down || status=1
  # `down` must leave none of the stack's processes behind.
  if bash scripts/stack status | grep -q ' running pid '; then
    echo "scripts/stack down left processes running:" >&2
    bash scripts/stack status >&2
    status=1
  fi
  bash scripts/stack purge || status=1
  exit "${status}"
}

# free_port: a loopback TCP port nothing listens on.
free_port() {
  local port
  while true; do
    port=$((10000 + RANDOM % 20000)) # below Linux's ephemeral ports (32768 and up)
    (exec 3<>"/dev/tcp/127.0.0.1/${port}") 2>/dev/null || break
  done
  echo "${port}"
}

if [[ ${TEST_SKIP_STACK:-} == 1 ]]; then
  echo "==> e2e against the distributed stack: skipped (TEST_SKIP_STACK=1)"
else
  # In a subshell: its exports stay there.
  run_step "e2e against the distributed stack" bash -c "$(declare -f stack_e2e stack_cleanup free_port); stack_e2e"
fi

if ((${#failed[@]} > 0)); then
  echo "==> FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "==> all steps passed"
