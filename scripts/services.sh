#!/usr/bin/env bash
# Make sure the backing services Ticketing needs answer on loopback:
#   PostgreSQL  127.0.0.1:5432  (postgres://postgres@127.0.0.1:5432/postgres, no password)
#   Redis       127.0.0.1:6379
#   NATS        127.0.0.1:4222  (with JetStream)
#
# Whatever already answers is reused as it is. A service that does not answer
# is installed from Debian's packages when missing (as root only) and started
# on loopback. Safe to run again and again; fast when everything already runs.
#
# Environment:
#   DATABASE_URL  set: PostgreSQL is the user's own; it is only checked, never
#                 started or reconfigured.
#   REDIS_URL     a non-local host: not managed (only checked). A local host
#   NATS_URL      (127.0.0.1/localhost) with another port: started on that port.
#   TICKETING_STATE_DIR  where data dirs, pid files and logs of the services
#                 started here go (default /var/lib/ticketing as root,
#                 ${XDG_STATE_HOME:-$HOME/.local/state}/ticketing otherwise).
set -euo pipefail

readonly WAIT_SECONDS=30
readonly PG_HBA_MARKER="# added by Ticketing scripts/services.sh: passwordless loopback for the postgres role"

if [[ ${EUID} -eq 0 ]]; then
  IS_ROOT=1
  DEFAULT_STATE_DIR=/var/lib/ticketing
else
  IS_ROOT=0
  DEFAULT_STATE_DIR="${XDG_STATE_HOME:-${HOME}/.local/state}/ticketing"
fi
STATE_DIR="${TICKETING_STATE_DIR:-${DEFAULT_STATE_DIR}}"
APT_UPDATED=0

log() { printf '%s\n' "$*"; }
die() {
  printf 'ERROR: %s\n' "$*" >&2
  exit 1
}

# ---------------------------------------------------------------------------
# helpers

# parse_endpoint URL DEFAULT_PORT
# Sets EP_HOST and EP_PORT from URL (scheme://[user[:password]@]host[:port][/...]).
# Only the first entry of a comma-separated list is used (NATS allows lists).
# EP_HOST is empty for a Unix socket URL. Never prints the URL (it may hold a password).
parse_endpoint() {
  local url=$1 default_port=$2 rest scheme=""
  rest=${url%%,*}
  if [[ ${rest} == *://* ]]; then
    scheme=${rest%%://*}
    rest=${rest#*://}
  fi
  EP_HOST=""
  EP_PORT=${default_port}
  case ${scheme} in
    unix | redis+unix | redis-socket) return 0 ;;
  esac
  rest=${rest%%[/?#]*}  # authority only
  rest=${rest##*@}      # drop user:password@
  if [[ ${rest} == \[* ]]; then  # [ipv6]:port
    EP_HOST=${rest%%]*}
    EP_HOST=${EP_HOST#[}
    rest=${rest#*]}
    [[ ${rest} == :* ]] && EP_PORT=${rest#:}
  else
    EP_HOST=${rest%%:*}
    [[ ${rest} == *:* ]] && EP_PORT=${rest#*:}
  fi
  [[ -n ${EP_PORT} ]] || EP_PORT=${default_port}
  if [[ ! ${EP_PORT} =~ ^[0-9]+$ ]]; then
    die "cannot read a port number from ${3:-the service URL} (got '${EP_PORT}')"
  fi
}

is_local_host() {
  case $1 in
    127.0.0.1 | localhost) return 0 ;;
    *) return 1 ;;
  esac
}

# port_open HOST PORT: does something accept TCP connections there?
port_open() {
  if [[ $1 == 127.0.0.1 ]]; then
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
  else
    # shellcheck disable=SC2016 # expanded by the inner bash
    timeout 3 bash -c '(exec 3<>"/dev/tcp/$1/$2")' _ "$1" "$2" 2>/dev/null
  fi
}

# wait_for NAME HOST PORT LOGFILE [PID]: poll until the port answers; fail clearly otherwise.
wait_for() {
  local name=$1 host=$2 port=$3 logfile=$4 pid=${5:-} i
  for ((i = 0; i < WAIT_SECONDS * 5; i++)); do
    if port_open "${host}" "${port}"; then
      log "${name}: ready on ${host}:${port}"
      return 0
    fi
    if [[ -n ${pid} ]] && ! kill -0 "${pid}" 2>/dev/null; then
      break
    fi
    sleep 0.2
  done
  {
    printf 'ERROR: %s does not answer on %s:%s' "${name}" "${host}" "${port}"
    if [[ -n ${pid} ]] && ! kill -0 "${pid}" 2>/dev/null; then
      printf ' (its process %s exited)' "${pid}"
    else
      printf ' after %ss' "${WAIT_SECONDS}"
    fi
    printf '.\nRead its log: %s\n' "${logfile}"
    if [[ -s ${logfile} ]]; then
      printf -- '--- last lines of %s ---\n' "${logfile}"
      tail -n 20 "${logfile}"
    else
      printf '(%s is empty or missing)\n' "${logfile}"
    fi
  } >&2
  exit 1
}

# note_external NAME HOST PORT WHY: a service this script does not manage.
note_external() {
  local name=$1 host=$2 port=$3 why=$4
  if [[ -z ${host} ]]; then
    log "${name}: ${why} points at a Unix socket; not managed here"
  elif port_open "${host}" "${port}"; then
    log "${name}: ${why} points at ${host}:${port}, which answers; not managed here"
  else
    log "${name}: WARNING: ${why} points at ${host}:${port}, which does not answer; not managed here" >&2
  fi
}

# find_pg_bin NAME [VERSION]: a PostgreSQL program on PATH or under /usr/lib/postgresql.
find_pg_bin() {
  local name=$1 version=${2:-} candidate
  if [[ -n ${version} && -x /usr/lib/postgresql/${version}/bin/${name} ]]; then
    printf '%s\n' "/usr/lib/postgresql/${version}/bin/${name}"
    return 0
  fi
  if candidate=$(command -v "${name}" 2>/dev/null); then
    printf '%s\n' "${candidate}"
    return 0
  fi
  candidate=$(compgen -G "/usr/lib/postgresql/*/bin/${name}" | sort -V | tail -n 1 || true)
  [[ -n ${candidate} ]] || return 1
  printf '%s\n' "${candidate}"
}

# ensure_installed DEBIAN_PACKAGE...: install the packages (root) or say how (non-root).
ensure_installed() {
  (($# > 0)) || return 0
  local cmd="DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $*"
  if ((IS_ROOT == 0)); then
    die "missing: $*. Install them with:
  sudo apt-get update && sudo ${cmd}
then run this script again."
  fi
  command -v apt-get >/dev/null || die "missing: $*, and apt-get is not available to install them"
  local need_update=0 pkg
  if ((APT_UPDATED == 0)); then
    if ! compgen -G '/var/lib/apt/lists/*_Packages' >/dev/null; then
      need_update=1
    else
      for pkg in "$@"; do
        if ! apt-cache policy "${pkg}" 2>/dev/null | grep -q 'Candidate: [0-9]'; then
          need_update=1
        fi
      done
    fi
  fi
  if ((need_update)); then
    log "apt-get update"
    apt-get update -qq || die "apt-get update failed"
    APT_UPDATED=1
  fi
  log "${cmd}"
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"; then
    ((APT_UPDATED == 0)) || die "could not install: $*"
    # The package lists may be stale: refresh them once and try again.
    log "apt-get update"
    apt-get update -qq || die "apt-get update failed"
    APT_UPDATED=1
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" ||
      die "could not install: $*"
  fi
}

# as_postgres CMD...: run CMD as the postgres OS user when root, as ourselves otherwise.
as_postgres() {
  if ((IS_ROOT)); then
    (cd / && runuser -u postgres -- "$@")
  else
    "$@"
  fi
}

# ---------------------------------------------------------------------------
# PostgreSQL

pg_installed() {
  find_pg_bin pg_ctl >/dev/null && find_pg_bin postgres >/dev/null
}

# debian_cluster PORT: "VERSION NAME" of a Debian cluster configured for PORT.
debian_cluster() {
  local port=$1
  command -v pg_lsclusters >/dev/null || return 1
  command -v pg_ctlcluster >/dev/null || return 1
  pg_lsclusters -h 2>/dev/null | awk -v p="${port}" '$3 == p { print $1, $2; found = 1; exit } END { exit !found }'
}

start_debian_cluster() {
  local version=$1 name=$2 host=$3 port=$4 owner logfile out
  read -r owner logfile < <(pg_lsclusters -h 2>/dev/null | awk -v v="${version}" -v n="${name}" '$1 == v && $2 == n { print $5, $7; exit }') || true
  logfile=${logfile:-/var/log/postgresql/postgresql-${version}-${name}.log}
  log "PostgreSQL: starting Debian cluster ${version}/${name} on ${host}:${port} ..."
  if ((IS_ROOT == 0)) && [[ ${owner:-postgres} != "$(id -un)" ]]; then
    die "PostgreSQL cluster ${version}/${name} is not running. Start it with:
  sudo pg_ctlcluster --skip-systemctl-redirect ${version} ${name} start"
  fi
  if ! out=$(pg_ctlcluster --skip-systemctl-redirect "${version}" "${name}" start 2>&1); then
    printf '%s\n' "${out}" >&2
    die "PostgreSQL: pg_ctlcluster ${version} ${name} start failed; read ${logfile}"
  fi
  wait_for PostgreSQL "${host}" "${port}" "${logfile}"
}

# start_own_cluster HOST PORT: initdb (once) and start a trust-auth cluster in the state dir.
start_own_cluster() {
  local host=$1 port=$2
  local datadir="${STATE_DIR}/pg" logfile="${STATE_DIR}/postgres.log" sockdir version="" initdb pg_ctl out
  if ((IS_ROOT)); then
    getent passwd postgres >/dev/null || die "PostgreSQL: initdb must not run as root and there is no 'postgres' user to run it as"
    sockdir=/var/run/postgresql
  else
    sockdir="${STATE_DIR}/pg-run"
  fi
  mkdir -p "${STATE_DIR}"
  [[ -f ${datadir}/PG_VERSION ]] && version=$(<"${datadir}/PG_VERSION")
  initdb=$(find_pg_bin initdb "${version}") || die "PostgreSQL: initdb not found on PATH nor under /usr/lib/postgresql/*/bin"
  pg_ctl=$(find_pg_bin pg_ctl "${version}") || die "PostgreSQL: pg_ctl not found on PATH nor under /usr/lib/postgresql/*/bin"

  if ((IS_ROOT)); then
    install -d -o postgres -g postgres -m 0700 "${datadir}"
    install -d -o postgres -g postgres -m 2775 "${sockdir}"
    touch "${logfile}"
    chown postgres:postgres "${logfile}"
  else
    install -d -m 0700 "${datadir}" "${sockdir}"
  fi

  if [[ ! -f ${datadir}/PG_VERSION ]]; then
    log "PostgreSQL: creating a cluster in ${datadir} (trust auth, superuser postgres)"
    if ! out=$(as_postgres "${initdb}" -D "${datadir}" --username=postgres --auth=trust --encoding=UTF8 --locale=C 2>&1); then
      printf '%s\n' "${out}" >&2
      die "PostgreSQL: initdb of ${datadir} failed"
    fi
  fi

  log "PostgreSQL: starting ${datadir} on ${host}:${port} ..."
  if ! out=$(as_postgres "${pg_ctl}" -D "${datadir}" -l "${logfile}" -w -t "${WAIT_SECONDS}" \
    -o "-c listen_addresses=${host} -p ${port} -c unix_socket_directories='${sockdir}'" start 2>&1); then
    printf '%s\n' "${out}" >&2
    die "PostgreSQL: pg_ctl start of ${datadir} failed; read ${logfile}"
  fi
  wait_for PostgreSQL "${host}" "${port}" "${logfile}"
}

# pg_check_login PORT: can the app's role log in over TCP without a password?
# Returns 0 on success, 2 on an authentication error, 1 on any other failure
# (PG_LOGIN_ERROR holds psql's message).
pg_check_login() {
  local port=$1
  PG_LOGIN_ERROR=""
  if PG_LOGIN_ERROR=$(PGCONNECT_TIMEOUT=3 psql -X -w -h 127.0.0.1 -p "${port}" -U postgres -d postgres -tAc 'select 1' 2>&1 >/dev/null); then
    return 0
  fi
  case ${PG_LOGIN_ERROR} in
    *"authentication failed"* | *"no password supplied"* | *"no pg_hba.conf entry"* | *"password authentication"*) return 2 ;;
    *) return 1 ;;
  esac
}

# pg_allow_trust PORT: prepend trust lines for the postgres role on loopback to pg_hba.conf and reload.
pg_allow_trust() {
  local port=$1 hba="" cluster tmp
  if ((IS_ROOT == 0)); then
    die "PostgreSQL on 127.0.0.1:${port} refuses the postgres role without a password:
  ${PG_LOGIN_ERROR}
Add these two lines at the top of its pg_hba.conf (sudo -u postgres psql -p ${port} -tAc 'show hba_file' tells where it is):
  host all postgres 127.0.0.1/32 trust
  host all postgres ::1/128 trust
then reload it (sudo -u postgres psql -p ${port} -c 'select pg_reload_conf()'), or set DATABASE_URL to a server and role you can use."
  fi
  getent passwd postgres >/dev/null || die "PostgreSQL refuses the postgres role without a password, and there is no 'postgres' OS user to fix pg_hba.conf with"
  hba=$(as_postgres psql -X -p "${port}" -tAc 'show hba_file' 2>/dev/null || true)
  if [[ -z ${hba} ]] && cluster=$(debian_cluster "${port}"); then
    hba="/etc/postgresql/${cluster% *}/${cluster#* }/pg_hba.conf"
  fi
  [[ -n ${hba} && -f ${hba} ]] || die "PostgreSQL refuses the postgres role without a password (${PG_LOGIN_ERROR}), and its pg_hba.conf could not be found"
  if grep -qF "${PG_HBA_MARKER}" "${hba}"; then
    die "PostgreSQL still refuses the postgres role without a password although ${hba} already has our trust lines: ${PG_LOGIN_ERROR}"
  fi
  tmp=$(mktemp)
  {
    printf '%s\n' "${PG_HBA_MARKER}" \
      'host all postgres 127.0.0.1/32 trust' \
      'host all postgres ::1/128 trust'
    cat "${hba}"
  } >"${tmp}"
  cat "${tmp}" >"${hba}" # keeps the file's owner and mode
  rm -f "${tmp}"
  as_postgres psql -X -p "${port}" -tAc 'select pg_reload_conf()' >/dev/null ||
    die "PostgreSQL: could not reload the configuration after changing ${hba}"
  log "PostgreSQL: changed ${hba}: prepended 'host all postgres 127.0.0.1/32 trust' and 'host all postgres ::1/128 trust' (the app logs in as postgres without a password), and reloaded"
}

ensure_postgres() {
  local host=127.0.0.1 port=5432 cluster
  if [[ -n ${DATABASE_URL:-} ]]; then
    parse_endpoint "${DATABASE_URL}" 5432 DATABASE_URL
    note_external PostgreSQL "${EP_HOST}" "${EP_PORT}" DATABASE_URL
    return 0
  fi

  if port_open "${host}" "${port}"; then
    log "PostgreSQL: already running on ${host}:${port}"
  else
    pg_installed || ensure_installed postgresql
    if port_open "${host}" "${port}"; then # the package may have started its cluster
      log "PostgreSQL: running on ${host}:${port}"
    elif cluster=$(debian_cluster "${port}"); then
      start_debian_cluster "${cluster% *}" "${cluster#* }" "${host}" "${port}"
    else
      start_own_cluster "${host}" "${port}"
    fi
  fi

  if ! command -v psql >/dev/null; then
    log "PostgreSQL: psql not found; not checking that postgres can log in without a password"
    return 0
  fi
  local rc=0
  pg_check_login "${port}" || rc=$?
  case ${rc} in
    0) ;;
    2)
      pg_allow_trust "${port}"
      pg_check_login "${port}" || die "PostgreSQL: postgres still cannot log in on 127.0.0.1:${port}: ${PG_LOGIN_ERROR}"
      ;;
    *) die "PostgreSQL answers on 127.0.0.1:${port} but 'psql -h 127.0.0.1 -U postgres -d postgres' fails: ${PG_LOGIN_ERROR}" ;;
  esac
}

# ---------------------------------------------------------------------------
# Redis

ensure_redis() {
  local host=127.0.0.1 port=6379 dir logfile pidfile out
  if [[ -n ${REDIS_URL:-} ]]; then
    parse_endpoint "${REDIS_URL}" 6379 REDIS_URL
    if ! is_local_host "${EP_HOST}"; then
      note_external Redis "${EP_HOST}" "${EP_PORT}" REDIS_URL
      return 0
    fi
    port=${EP_PORT}
  fi
  if port_open "${host}" "${port}"; then
    log "Redis: already running on ${host}:${port}"
    return 0
  fi
  command -v redis-server >/dev/null || ensure_installed redis-server
  if port_open "${host}" "${port}"; then # the package may have started it
    log "Redis: running on ${host}:${port}"
    return 0
  fi
  dir="${STATE_DIR}/redis"
  logfile="${STATE_DIR}/redis.log"
  pidfile="${STATE_DIR}/redis-${port}.pid"
  mkdir -p "${dir}"
  log "Redis: starting on ${host}:${port} ..."
  if ! out=$(redis-server --daemonize yes --bind "${host}" --port "${port}" --save "" --appendonly no \
    --dir "${dir}" --logfile "${logfile}" --pidfile "${pidfile}" 2>&1); then
    printf '%s\n' "${out}" >&2
    die "Redis: redis-server failed to start; read ${logfile}"
  fi
  wait_for Redis "${host}" "${port}" "${logfile}"
}

# ---------------------------------------------------------------------------
# NATS

# nats_has_jetstream HOST PORT: does the server's INFO line advertise JetStream?
nats_has_jetstream() {
  local info=""
  # shellcheck disable=SC2016 # expanded by the inner bash
  info=$(timeout 3 bash -c 'exec 3<>"/dev/tcp/$1/$2" && IFS= read -r -t 2 line <&3 && printf "%s" "$line"' _ "$1" "$2" 2>/dev/null || true)
  [[ ${info} == *'"jetstream":true'* ]]
}

ensure_nats() {
  local host=127.0.0.1 port=4222 logfile pidfile storedir pid
  if [[ -n ${NATS_URL:-} ]]; then
    parse_endpoint "${NATS_URL}" 4222 NATS_URL
    if ! is_local_host "${EP_HOST}"; then
      note_external NATS "${EP_HOST}" "${EP_PORT}" NATS_URL
      return 0
    fi
    port=${EP_PORT}
  fi
  if port_open "${host}" "${port}"; then
    log "NATS: already running on ${host}:${port}"
    if ! nats_has_jetstream "${host}" "${port}"; then
      log "NATS: WARNING: the server on ${host}:${port} does not advertise JetStream; restart it with -js" >&2
    fi
    return 0
  fi
  command -v nats-server >/dev/null || ensure_installed nats-server
  if port_open "${host}" "${port}"; then # the package may have started it
    log "NATS: running on ${host}:${port}"
    return 0
  fi
  storedir="${STATE_DIR}/nats"
  logfile="${STATE_DIR}/nats.log"
  pidfile="${STATE_DIR}/nats-${port}.pid"
  mkdir -p "${storedir}"
  log "NATS: starting on ${host}:${port} with JetStream ..."
  # nats-server writes its log itself (-l); early errors on stderr go to the same file.
  # shellcheck disable=SC2094
  nohup setsid nats-server -a "${host}" -p "${port}" -js -sd "${storedir}" -l "${logfile}" -P "${pidfile}" \
    </dev/null >>"${logfile}" 2>&1 &
  pid=$!
  wait_for NATS "${host}" "${port}" "${logfile}" "${pid}"
}

# ---------------------------------------------------------------------------

main() {
  ensure_postgres
  ensure_redis
  ensure_nats
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  main "$@"
fi
