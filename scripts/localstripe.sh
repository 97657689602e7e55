#!/usr/bin/env bash
# Runs localstripe (a local Stripe API emulator) adapted for the payments service's requests:
# see scripts/localstripe.py for what is adapted and why.
#
#   scripts/localstripe.sh [PORT | --port PORT]     (default: $LOCALSTRIPE_PORT or 8420)
#   scripts/localstripe.sh --install                only install it (the test command does,
#                                                   before the tests start servers)
#
# Listens on 127.0.0.1 only, prints `localstripe listening on http://127.0.0.1:PORT` on stdout
# once it accepts connections, and runs until killed (it execs Python, so the pid it was
# started with is the server's). Logs, and the one-time install line, go to stderr.
#
# The first run installs localstripe==1.15.10 into ${CARGO_TARGET_DIR:-<repo>/target}/
# localstripe-venv: a virtualenv when `python3 -m venv` works, otherwise (Debian without
# python3-venv) `pip install --target` into that folder, which Debian's externally-managed
# Python allows. Needs python3 and, for the install, pip and PyPI.
set -euo pipefail

VERSION=1.15.10
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
case $TARGET_DIR in /*) ;; *) TARGET_DIR=$ROOT/$TARGET_DIR ;; esac
ENV_DIR=$TARGET_DIR/localstripe-venv
# Written last by a finished install; holds how it was installed (venv or target).
STAMP=$ENV_DIR/.installed-localstripe-$VERSION

install_localstripe() {
    echo "localstripe: installing localstripe==$VERSION into $ENV_DIR (once) ..." >&2
    rm -rf "$ENV_DIR"
    local pip_quiet=(-q --disable-pip-version-check --no-input)
    export PIP_ROOT_USER_ACTION=ignore # no "running pip as root" warning (CI runs as root)
    if python3 -m venv "$ENV_DIR" >/dev/null 2>&1 && "$ENV_DIR/bin/python" -m pip --version >/dev/null 2>&1; then
        "$ENV_DIR/bin/python" -m pip install "${pip_quiet[@]}" "localstripe==$VERSION" >&2
        echo venv >"$STAMP"
    else
        rm -rf "$ENV_DIR"
        if ! python3 -m pip --version >/dev/null 2>&1; then
            echo "localstripe: neither 'python3 -m venv' nor pip works; install python3-venv or python3-pip" >&2
            exit 1
        fi
        echo "localstripe: no working venv; using pip install --target" >&2
        mkdir -p "$ENV_DIR"
        python3 -m pip install "${pip_quiet[@]}" --target "$ENV_DIR/site-packages" "localstripe==$VERSION" >&2
        echo target >"$STAMP"
    fi
    echo "localstripe: installed" >&2
}

if [[ ! -f $STAMP ]]; then
    mkdir -p "$TARGET_DIR"
    # One install at a time (tests may start several servers at once); the lock is released
    # before the server starts.
    if command -v flock >/dev/null 2>&1; then
        exec 9>"$TARGET_DIR/localstripe-venv.lock"
        flock 9
    fi
    [[ -f $STAMP ]] || install_localstripe
    if command -v flock >/dev/null 2>&1; then exec 9>&-; fi
fi

if [[ ${1:-} == --install ]]; then
    echo "localstripe $VERSION is installed in $ENV_DIR" >&2
    exit 0
fi

WRAPPER=$ROOT/scripts/localstripe.py
if [[ $(cat "$STAMP") == venv ]]; then
    exec "$ENV_DIR/bin/python" "$WRAPPER" "$@"
fi
export PYTHONPATH=$ENV_DIR/site-packages${PYTHONPATH:+:$PYTHONPATH}
exec python3 "$WRAPPER" "$@"
