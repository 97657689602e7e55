#!/usr/bin/env bash
# Installs what the web UI's browser tests need: Debian's chromium and chromium-driver.
# Never downloads a browser or driver from anywhere else. As root it installs what is
# missing; otherwise it prints the exact command to run.
set -euo pipefail

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)

if [ ${#missing[@]} -eq 0 ]; then
  echo "browser deps present: $(/usr/bin/chromium --version 2>/dev/null || echo chromium), $(/usr/bin/chromedriver --version 2>/dev/null | head -1)"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "missing: ${missing[*]}. Run as root:" >&2
  echo "  apt-get update && apt-get install -y chromium chromium-driver" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get install -y "${missing[@]}" || { apt-get update && apt-get install -y "${missing[@]}"; }
echo "installed: ${missing[*]}"
