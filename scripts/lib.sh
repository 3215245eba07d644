# Sourced (never run) by scripts/dovecot.sh, scripts/postfix.sh and scripts/sendmail.sh,
# which each start a throwaway server on loopback for the tests, for what they do alike:
# their command line, the temporary directory and its cleanup, free ports, and running
# the command with the server's variables exported. scripts/bench/milter.sh uses its ports.
#
# The script sets NAME (its file name without .sh, for messages) and SERVER (what it
# starts, for messages) before sourcing, then calls:
#   lib_args "$@"           parses `--env-file FILE`, `-- COMMAND [ARGS...]` and `--help`
#                           (which prints the script's header comment) into ENV_FILE and
#                           COMMAND
#   log TEXT...             "scripts/NAME.sh: TEXT" on standard error
#   lib_without REASON      says REASON; with a COMMAND runs it anyway (its tests then fail,
#                           saying how to run them), without one exits 1
#   lib_tempdir             DIR: a fresh directory (mode 755), removed on exit after the
#                           script's stop_server function (when it defines one) has run;
#                           INT and TERM exit with 130 and 143, so that cleanup runs
#   port_free PORT [ADDR...]  true when nothing listens on PORT at any ADDR (127.0.0.1)
#   pick_port [ADDR...]     a port from 10000 to below the ephemeral range that is free at
#                           every ADDR (127.0.0.1)
#   smtp_ready PORT         true when 127.0.0.1:PORT greets with 220 within 2 s
#   lib_run PREFIX LOG VAR...  with a COMMAND: runs it (the variables PREFIXVAR exported),
#                           shows the last lines of the server's LOG when it fails and exits
#                           with its status; without one: prints the `export PREFIXVAR=...`
#                           lines (and writes them to ENV_FILE) and returns, for the script
#                           to wait in the foreground for its server
# shellcheck shell=bash

log() { echo "scripts/$NAME.sh: $*" >&2; }

lib_args() {
  ENV_FILE=""
  COMMAND=()
  while [ $# -gt 0 ]; do
    case "$1" in
      --env-file) ENV_FILE="${2:?--env-file needs a path}"; shift 2 ;;
      --) shift; COMMAND=("$@"); break ;;
      -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
      *) log "unknown argument '$1' (see --help)"; exit 2 ;;
    esac
  done
}

lib_without() {
  log "$1"
  if [ ${#COMMAND[@]} -gt 0 ]; then
    log "running the command without $SERVER: the tests that need $SERVER will fail"
    exec "${COMMAND[@]}"
  fi
  exit 1
}

lib_cleanup() {
  local status=$?
  if declare -F stop_server >/dev/null; then stop_server || true; fi
  [ -n "${DIR:-}" ] && rm -rf "$DIR"
  exit "$status"
}

lib_tempdir() {
  DIR=$(mktemp -d "${TMPDIR:-/tmp}/dmarc-$NAME.XXXXXX")
  chmod 755 "$DIR"
  trap lib_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

port_free() {
  local port=$1 addr
  shift
  [ $# -gt 0 ] || set -- 127.0.0.1
  for addr in "$@"; do
    if (exec 3<>"/dev/tcp/$addr/$port") 2>/dev/null; then return 1; fi
  done
  return 0
}

pick_port() {
  # Below the kernel's ephemeral range (32768 up by default): a port picked there can be
  # taken, between the pick and the server's bind, as the local port of any outgoing
  # connection (a test suite makes thousands), and the bind then fails.
  local p low=32768
  if [ -r /proc/sys/net/ipv4/ip_local_port_range ]; then
    read -r low _ < /proc/sys/net/ipv4/ip_local_port_range || low=32768
  fi
  [ "$low" -gt 12000 ] 2>/dev/null || low=32768
  while :; do
    p=$(( 10000 + RANDOM % (low - 10000) ))
    if port_free "$p" "$@"; then echo "$p"; return; fi
  done
}

smtp_ready() {
  local line
  line=$(timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"; head -n 1 <&3' _ "$1" 2>/dev/null) || return 1
  case "$line" in 220*) return 0 ;; *) return 1 ;; esac
}

lib_run() {
  local prefix=$1 server_log=$2 v name status
  shift 2
  if [ ${#COMMAND[@]} -gt 0 ]; then
    set +e
    "${COMMAND[@]}"
    status=$?
    set -e
    if [ "$status" -ne 0 ] && [ -s "$server_log" ]; then
      log "command failed ($status); the last lines of $server_log:"
      tail -n 30 "$server_log" | sed 's/^/  /' >&2
    fi
    exit "$status"
  fi
  local lines=""
  for v in "$@"; do
    name="$prefix$v"
    lines+=$(printf 'export %s=%q' "$name" "${!name}")$'\n'
  done
  # Whole or not at all: a reader waits for the file to be there, then sources it.
  if [ -n "$ENV_FILE" ]; then printf '%s' "$lines" >"$ENV_FILE.tmp" && mv "$ENV_FILE.tmp" "$ENV_FILE"; fi
  printf '%s' "$lines"
  log "press Ctrl-C to stop"
}
