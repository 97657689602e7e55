#!/usr/bin/env bash
# Makes the Python virtual environment the OpenAPI fuzzing test runs schemathesis from
# (target/schemathesis-venv, the release pinned below, from PyPI), installing Debian's
# python3 and python3-venv first when they are missing (as root; otherwise it prints the
# command). The test (crates/ticketing/tests/cli.rs) makes the same environment itself if
# this did not run; keep the two pins equal.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

readonly RELEASE="schemathesis==4.32.5"
readonly VENV="target/schemathesis-venv"

if [[ -x "${VENV}/bin/schemathesis" && "$(cat "${VENV}/.installed" 2>/dev/null)" == "${RELEASE}" ]]; then
  echo "schemathesis present: $("${VENV}/bin/schemathesis" --version)"
  exit 0
fi

if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing: python3 with venv. Run as root:" >&2
    echo "  apt-get update && apt-get install -y python3 python3-venv" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y python3 python3-venv || { apt-get update && apt-get install -y python3 python3-venv; }
fi

mkdir -p target
python3 -m venv "${VENV}"
"${VENV}/bin/pip" install --quiet --disable-pip-version-check "${RELEASE}"
echo "${RELEASE}" >"${VENV}/.installed"
echo "installed: $("${VENV}/bin/schemathesis" --version)"
