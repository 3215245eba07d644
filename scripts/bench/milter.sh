#!/usr/bin/env bash
# The milter benchmark (BENCHMARKS.md, "The milter through Postfix"): one private Postfix
# on loopback (scripts/postfix.sh), the same messages and the same DNS answers (zone-server
# serving mail-bench's zone on a loopback address, port 53) for each of
#   none      no milter
#   dmarc     `dmarc milter` over TCP (Postfix `smtpd_milters = inet:127.0.0.1:PORT`)
#   dmarc-unix  the same process over a Unix socket (`smtpd_milters = unix:PATH`)
#   dmarc-base  another build of `dmarc milter` (DMARC_BASE=/path/to/dmarc), over TCP:
#             before and after a change, in the same run; BASE_ARGS adds arguments to
#             its command line (BASE_ARGS="--workers 2" with DMARC_BASE set to the same
#             build compares two settings)
#   opendmarc OpenDKIM 2.11 (verifying) then OpenDMARC 1.4.2 (SPF self-validation), as
#             Debian packages them (and, to see which costs what, `opendkim` and
#             `opendmarc-alone`, each without the other)
#   rspamd    rspamd 3.4 (Debian's package): its proxy worker in milter mode scanning by
#             itself (self_scan), only its SPF, DKIM, ARC and DMARC modules configured
#             (DMARC policy enforced by the module's `actions`: reject, and p=quarantine
#             as its spam header, since it has no hold action), milter_headers for the
#             Authentication-Results field only; no Redis (none of these needs it); a
#             private configuration, run and log directory, zone-server as its resolver
# and for each:
#   1. throughput: smtp-source (ships with Postfix) sends COUNT copies of each of ten
#      mail-bench messages that pass DMARC by an aligned DKIM signature, SESSIONS sessions
#      at once, from 127.0.0.1 (no filter exempts loopback here, so each verifies SPF for
#      127.0.0.1, the DKIM signatures and DMARC): messages/s, and the CPU seconds
#      (user+sys, from /proc/PID/stat) each filter process used meanwhile;
#   2. latency: scripts/bench/milter_latency.py sends every mail-bench message (300) with
#      XCLIENT (each case's client IP and HELO) one at a time, after one warm-up pass (warm
#      DNS caches where the filter keeps one): p50/p90/p99 per transaction (MAIL FROM to
#      the reply to the final dot). The added latency is each figure minus "none"'s.
#   After dmarc's (or dmarc-unix's, dmarc-base's) throughput phase, the library floor for
#   the same messages: `dmarc verify --batch --jobs 1` (the same receiver session: SPF
#   for 127.0.0.1 and the HELO, every DKIM signature, DMARC) over the same COUNT copies of
#   the ten files, DNS from the zone file, its whole-process user+sys CPU per message beside
#   the milter's.
#   3. with --soak N: N messages through `dmarc milter` by smtp-source, its RSS sampled
#      every second (memory must stay flat).
#   --no-latency skips phase 2 (CPU figures only); --reuse makes smtp-source send all of
#   a session's messages over one SMTP connection (its -d), hence one milter connection
#   for many messages, where it otherwise opens one per message (the per-connection cost
#   apart from the per-message cost).
#
# Usage (as root: Postfix, port 53, and a private mount namespace for the C filters'
# /etc/resolv.conf):
#   cargo build --release -p dmarc -p zone-server
#   bash scripts/bench/milter.sh [--count N] [--sessions S] [--rounds R] [--soak N]
#                                [--only none,dmarc,opendmarc] [--limit N]
#                                [--no-latency] [--reuse]
# (--limit: only the first N messages for the latency runs, for a trial run)
# Installs postfix, opendkim, opendmarc and rspamd from Debian's packages when missing
# (the packaged services are stopped: the benchmark runs its own instances).
# DMARC=/path/to/dmarc and ZONE_SERVER=/path/to/zone-server choose other builds.
set -euo pipefail
[ -n "${BENCH_TRACE:-}" ] && set -x
cd "$(dirname "$0")/../.."
ROOT=$PWD

COUNT=200
SESSIONS=8
ROUNDS=2
SOAK=0
LIMIT=0
ONLY="none,dmarc,opendmarc"
LATENCY=1
REUSE=
while [ $# -gt 0 ]; do
  case "$1" in
    --count) COUNT=$2; shift 2 ;;
    --sessions) SESSIONS=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --soak) SOAK=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    --limit) LIMIT=$2; shift 2 ;;
    --no-latency) LATENCY=0; shift ;;
    --reuse) REUSE=-d; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "milter.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

NAME=bench/milter
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
[ "$(id -u)" -eq 0 ] || { log "run as root"; exit 1; }
DMARC=${DMARC:-$ROOT/target/release/dmarc}
DMARC_BASE=${DMARC_BASE:-}
read -ra BASE_ARGS <<<"${BASE_ARGS:-}"
ZONE_SERVER=${ZONE_SERVER:-$ROOT/target/release/zone-server}
for b in "$DMARC" "$ZONE_SERVER"; do
  [ -x "$b" ] || { log "$b missing: cargo build --release -p dmarc -p zone-server"; exit 1; }
done
CORPUS=${DMARC_CORPORA:-$ROOT/../shared/corpora}/mail-bench
[ -f "$CORPUS/cases.jsonl" ] || { log "mail-bench not found at $CORPUS"; exit 1; }
export PATH="$PATH:/usr/sbin:/sbin"
if ! command -v opendkim >/dev/null || ! command -v opendmarc >/dev/null || ! command -v smtp-source >/dev/null \
  || ! command -v rspamd >/dev/null; then
  log "installing postfix, opendkim, opendmarc and rspamd (apt-get)"
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections 2>/dev/null || true
  DEBIAN_FRONTEND=noninteractive apt-get install -y postfix opendkim opendmarc rspamd >&2
  for s in postfix opendkim opendmarc rspamd; do service "$s" stop >/dev/null 2>&1 || true; done
fi

WORK=$(mktemp -d /tmp/dmarc-milter-bench.XXXXXX)
PIDS=()
POSTFIX_PID=
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ -n "$POSTFIX_PID" ]; then kill "$POSTFIX_PID" 2>/dev/null || true; wait "$POSTFIX_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
wait_port() {
  for _ in $(seq "${3:-200}"); do port_free "$2" "$1" || return 0; sleep 0.05; done
  log "nothing on $1:$2; the filters' logs:"; tail -n 5 "$WORK"/*.log >&2; exit 1
}

# --- DNS: zone-server on a loopback address, port 53 (what libresolv and unbound ask) -------
DNS_IP=127.0.0.77
"$ZONE_SERVER" --zone "$CORPUS/zone.txt" --listen "$DNS_IP:53" >"$WORK/zone-server.log" 2>&1 &
PIDS+=($!)
wait_port "$DNS_IP" 53
echo "nameserver $DNS_IP" >"$WORK/resolv.conf"
# The C filters read /etc/resolv.conf: theirs, in their own mount namespace, names zone-server.
with_resolv() { exec unshare -m sh -c 'mount --bind "$0" /etc/resolv.conf && exec "$@"' "$WORK/resolv.conf" "$@"; }

# --- Postfix ---------------------------------------------------------------------------
bash scripts/postfix.sh --env-file "$WORK/postfix.env" >/dev/null 2>"$WORK/postfix.sh.log" &
POSTFIX_PID=$!
for _ in $(seq 300); do [ -s "$WORK/postfix.env" ] && break; sleep 0.1; done
[ -s "$WORK/postfix.env" ] || { cat "$WORK/postfix.sh.log" >&2; exit 1; }
# shellcheck disable=SC1091
. "$WORK/postfix.env"
PF=$DMARC_TEST_POSTFIX_CONFIG
SMTP=$DMARC_TEST_POSTFIX_SMTP
# Accepted mail is discarded (the same for every filter): the filters are measured, not
# the disk. Held mail stays in the hold queue, removed between runs.
postconf -c "$PF" -e virtual_transport=discard "default_process_limit=$((SESSIONS + 12))"
use_milters() {
  postconf -c "$PF" -e "smtpd_milters=$1"
  postfix -c "$PF" reload >/dev/null 2>&1
  sleep 1
}

# --- The filters -------------------------------------------------------------------------
P_DMARC=$(pick_port); P_DKIM=$(pick_port); P_ODMARC=$(pick_port); P_RSPAMD=$(pick_port); P_BASE=$(pick_port)
# The Unix socket: in a directory Postfix's smtpd (user postfix) may enter, the socket
# writable by it.
chmod 755 "$WORK"; mkdir -m 755 "$WORK/sock"
SOCK_DMARC=$WORK/sock/dmarc.sock
"$DMARC" milter --listen "inet:127.0.0.1:$P_DMARC" --listen "unix:$SOCK_DMARC" \
  --authserv-id mx.receiver.example --nameserver "$DNS_IP:53" -o 'exempt.client_ips=[]' \
  -o quarantine=hold -o 'server.socket_mode="0666"' 2>"$WORK/dmarc-milter.log" &
DMARC_PID=$!; PIDS+=($DMARC_PID)
BASE_PID=
if [ -n "$DMARC_BASE" ]; then
  "$DMARC_BASE" milter --listen "inet:127.0.0.1:$P_BASE" --authserv-id mx.receiver.example \
    --nameserver "$DNS_IP:53" -o 'exempt.client_ips=[]' -o quarantine=hold "${BASE_ARGS[@]}" \
    2>"$WORK/dmarc-base.log" &
  BASE_PID=$!; PIDS+=($BASE_PID)
fi
cat >"$WORK/opendkim.conf" <<EOF
Mode v
Syslog no
Background no
Socket inet:$P_DKIM@127.0.0.1
AuthservID mx.receiver.example
InternalHosts 192.0.2.255
Nameservers $DNS_IP
MinimumKeyBits 1024
EOF
echo 192.0.2.255 >"$WORK/ignore-hosts"
cat >"$WORK/opendmarc.conf" <<EOF
Background false
Syslog false
Socket inet:$P_ODMARC@127.0.0.1
AuthservID mx.receiver.example
TrustedAuthservIDs mx.receiver.example
SPFSelfValidate true
SPFIgnoreResults true
IgnoreHosts $WORK/ignore-hosts
RejectFailures true
HoldQuarantinedMessages true
FailureReports false
EOF
with_resolv opendkim -f -x "$WORK/opendkim.conf" 2>"$WORK/opendkim.log" &
DKIM_PID=$!; PIDS+=($DKIM_PID)
with_resolv opendmarc -f -c "$WORK/opendmarc.conf" 2>"$WORK/opendmarc.log" &
ODMARC_PID=$!; PIDS+=($ODMARC_PID)
# rspamd: a configuration of its own (not /etc/rspamd's, which loads every module and the
# rules): the proxy worker speaking the milter protocol and scanning itself, so all of
# rspamd's work is in its main process and that one worker; the four modules, each told
# to check loopback too (check_local: no client is exempt, as for the others).
mkdir -p "$WORK/rspamd/run" "$WORK/rspamd/db" "$WORK/rspamd/log"
chown -R _rspamd:_rspamd "$WORK/rspamd"
cat >"$WORK/rspamd/rspamd.conf" <<EOF
options {
  pidfile = "$WORK/rspamd/run/rspamd.pid";
  # The C modules to load (the stock list adds chartable, regexp, fuzzy_check); without
  # dkim here the arc plugin disables itself and DMARC sees no DKIM result.
  filters = "dkim";
  dns { nameserver = ["$DNS_IP:53"]; timeout = 2s; retransmits = 2; }
  check_local = true;
  check_authed = true;
  local_addrs = [];
}
logging { type = "file"; filename = "$WORK/rspamd/log/rspamd.log"; level = "warning"; }
worker "rspamd_proxy" {
  bind_socket = "127.0.0.1:$P_RSPAMD";
  milter = yes;
  timeout = 120s;
  count = 1;
  upstream "local" { default = yes; self_scan = yes; }
  discard_on_reject = false;
  quarantine_on_reject = false;
  reject_message = "Rejected by DMARC policy";
}
actions { reject = 1000; }
spf { check_local = true; check_authed = true; }
dkim { check_local = true; check_authed = true; }
arc { check_local = true; check_authed = true; }
dmarc {
  check_local = true; check_authed = true;
  # rspamd 3.4 has no quarantine action: p=quarantine adds its header (for the delivery
  # agent to file as spam), as dmarc milter -o quarantine=header would.
  actions { quarantine = "add header"; reject = "reject"; }
}
milter_headers {
  use = ["authentication-results"];
  authenticated_headers = ["authentication-results"];
  extended_spam_headers = false;
}
modules { path = "/usr/share/rspamd/plugins"; }
EOF
rspamd -f -u _rspamd -g _rspamd -c "$WORK/rspamd/rspamd.conf" \
  --var "RUNDIR=$WORK/rspamd/run" --var "DBDIR=$WORK/rspamd/db" --var "LOGDIR=$WORK/rspamd/log" \
  >"$WORK/rspamd/stdout.log" 2>&1 &
RSPAMD_PID=$!; PIDS+=($RSPAMD_PID)
wait_port 127.0.0.1 "$P_DMARC"; wait_port 127.0.0.1 "$P_DKIM"
[ -z "$BASE_PID" ] || wait_port 127.0.0.1 "$P_BASE"
for _ in $(seq 200); do [ -S "$SOCK_DMARC" ] && break; sleep 0.05; done; wait_port 127.0.0.1 "$P_ODMARC"
# rspamd compiles its public-suffix list at start: a minute or more on a loaded machine.
wait_port 127.0.0.1 "$P_RSPAMD" 6000
# rspamd's processes: its main process and the workers it forks.
rspamd_pids() { echo "$RSPAMD_PID" $(pgrep -P "$RSPAMD_PID"); }

# CPU seconds (user+sys) of processes, from /proc/PID/stat.
cpu() {
  local t=0 p
  for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done
  echo "$t $(getconf CLK_TCK)" | awk '{printf "%.2f", $1 / $2}'
}
now() { date +%s.%N; }
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

# The smtp-source messages: ten that pass DMARC by an aligned DKIM signature (so that
# every filter accepts them from 127.0.0.1), with LF line ends (smtp-source adds CRLF).
python3 - "$CORPUS" "$WORK" <<'EOF'
import json, sys
corpus, work = sys.argv[1], sys.argv[2]
picked = []
for line in open(f"{corpus}/cases.jsonl"):
    c = json.loads(line)
    if c["scenario"] in ("direct", "esp_aligned_dkim") and any(
        d["result"] == "pass" and d["d"] == c["from_domain"] for d in c["dkim"]
    ):
        picked.append(c)
    if len(picked) == 10:
        break
with open(f"{work}/source.list", "w") as out:
    for i, c in enumerate(picked):
        body = open(f"{corpus}/{c['file']}", "rb").read().replace(b"\r\n", b"\n")
        open(f"{work}/m{i}.eml", "wb").write(body)
        out.write(f"{work}/m{i}.eml {c['mail_from'] or 'postmaster@' + c['helo']}\n")
EOF

# The library floor's cases: the same COUNT copies of the ten messages, from 127.0.0.1
# (floor.jsonl), and one copy of each (floor1.jsonl, to take off the process's fixed cost:
# start, zone file).
HELO=$(hostname)
while read -r f from; do
  printf '{"file": "%s", "ip": "127.0.0.1", "helo": "%s", "mail_from": "%s"}\n' "$f" "$HELO" "$from" >>"$WORK/floor1.jsonl"
  for _ in $(seq "$COUNT"); do
    printf '{"file": "%s", "ip": "127.0.0.1", "helo": "%s", "mail_from": "%s"}\n' "$f" "$HELO" "$from"
  done
done <"$WORK/source.list" >"$WORK/floor.jsonl"
# `dmarc verify --batch --jobs 1` over both, best of three each (user+sys CPU of the whole
# process): prints the CPU seconds of the COUNT copies less those of one copy, and the
# number of messages that difference is for.
floor() {
  python3 - "$1" "$WORK/floor.jsonl" "$WORK/floor1.jsonl" "$CORPUS/zone.txt" <<'EOF'
import resource, subprocess, sys
dmarc, cases, one, zone = sys.argv[1:]
def cpu(path):
    best = None
    for _ in range(3):
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run([dmarc, "verify", "--batch", path, "--dns-zone", zone, "--jobs", "1"],
                       stdout=subprocess.DEVNULL, check=True)
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
        best = t if best is None else min(best, t)
    return best
n = sum(1 for _ in open(cases)) - sum(1 for _ in open(one))
print(f"{cpu(cases) - cpu(one):.3f} {n}")
EOF
}

throughput() {
  local n=0 f from
  while read -r f from; do
    smtp-source -c $REUSE -s "$SESSIONS" -m "$COUNT" -F "$f" -f "$from" -t user@receiver.example "$SMTP" \
      >/dev/null 2>>"$WORK/smtp-source.err"
    n=$((n + COUNT))
  done <"$WORK/source.list"
  echo "$n"
}

report() { printf '%-10s %s\n' "$1" "$2"; }
echo "# milter benchmark $(date -u +%FT%TZ), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# smtp-source: 10 messages x $COUNT, $SESSIONS sessions${REUSE:+, several messages per SMTP connection (-d)}; latency: $([ "$LATENCY" = 1 ] && echo "300 mail-bench messages x $ROUNDS after a warm-up pass" || echo "not measured")"
[ -z "$BASE_PID" ] || echo "# dmarc-base: $DMARC_BASE ${BASE_ARGS[*]}"
IFS=, read -ra CONFIGS <<<"$ONLY"
for config in "${CONFIGS[@]}"; do
  bin=
  case "$config" in
    none) use_milters ""; procs=() ;;
    dmarc) use_milters "inet:127.0.0.1:$P_DMARC"; procs=("$DMARC_PID"); bin=$DMARC ;;
    dmarc-unix) use_milters "unix:$SOCK_DMARC"; procs=("$DMARC_PID"); bin=$DMARC ;;
    dmarc-base)
      [ -n "$BASE_PID" ] || { log "dmarc-base needs DMARC_BASE=/path/to/dmarc"; exit 2; }
      use_milters "inet:127.0.0.1:$P_BASE"; procs=("$BASE_PID"); bin=$DMARC_BASE ;;
    opendmarc) use_milters "inet:127.0.0.1:$P_DKIM, inet:127.0.0.1:$P_ODMARC"; procs=("$DKIM_PID" "$ODMARC_PID") ;;
    opendkim) use_milters "inet:127.0.0.1:$P_DKIM"; procs=("$DKIM_PID") ;;
    opendmarc-alone) use_milters "inet:127.0.0.1:$P_ODMARC"; procs=("$ODMARC_PID") ;;
    rspamd) use_milters "inet:127.0.0.1:$P_RSPAMD"; read -ra procs <<<"$(rspamd_pids)" ;;
    *) log "unknown configuration $config"; exit 2 ;;
  esac
  : >"$WORK/smtp-source.err"
  python3 scripts/bench/milter_latency.py "$SMTP" "$CORPUS" --rounds 1 --limit "$LIMIT" >"$WORK/warm.json"
  c0=(); for p in "${procs[@]}"; do c0+=("$(cpu "$p")"); done
  t0=$(now)
  sent=$(throughput)
  t1=$(now)
  c1=(); for p in "${procs[@]}"; do c1+=("$(cpu "$p")"); done
  wall=$(echo "$t0 $t1" | awk '{printf "%.2f", $2 - $1}')
  line="sent $sent in ${wall}s = $(echo "$sent $wall" | awk '{printf "%.0f", $1 / $2}') msg/s"
  total=0
  for i in "${!procs[@]}"; do
    used=$(echo "${c0[$i]} ${c1[$i]}" | awk '{printf "%.2f", $2 - $1}')
    total=$(echo "$total $used" | awk '{printf "%.2f", $1 + $2}')
    line="$line; pid ${procs[$i]} $(tr -d '\0' <"/proc/${procs[$i]}/comm") ${used} CPU s"
  done
  if [ ${#procs[@]} -gt 0 ]; then
    line="$line; $(echo "$sent $total" | awk '{printf "%.0f", $1 / $2}') msg per filter CPU s"
  fi
  errors=$(grep -c . "$WORK/smtp-source.err" || true)
  report "$config" "$line; smtp-source errors: $errors"
  case "$config" in
    dmarc*)
      read -r f_cpu f_n <<<"$(floor "$bin")"
      report "" "$(echo "$sent $total $f_cpu $f_n" | awk '{m = 1e6 * $2 / $1; f = 1e6 * $3 / $4; printf "CPU per message: milter %.0f us; library floor (dmarc verify --batch --jobs 1, same messages, fixed cost taken off) %.0f us; milter / floor %.2fx", m, f, m / f}')"
      ;;
  esac
  [ "$errors" -eq 0 ] || head -n 3 "$WORK/smtp-source.err" | sed 's/^/    /'
  if [ "$LATENCY" = 1 ]; then
    lat=$(python3 scripts/bench/milter_latency.py "$SMTP" "$CORPUS" --rounds "$ROUNDS" --limit "$LIMIT")
    report "" "latency $lat"
  fi
  postsuper -c "$PF" -d ALL hold >/dev/null 2>&1 || true
done

if [ "$SOAK" -gt 0 ]; then
  use_milters "inet:127.0.0.1:$P_DMARC"
  f=$(head -n 1 "$WORK/source.list" | cut -d' ' -f1); from=$(head -n 1 "$WORK/source.list" | cut -d' ' -f2)
  (while kill -0 "$DMARC_PID" 2>/dev/null; do echo "$(date +%s) $(rss_kib "$DMARC_PID")"; sleep 1; done) >"$WORK/rss" &
  SAMPLER=$!; PIDS+=($SAMPLER)
  c0=$(cpu "$DMARC_PID"); t0=$(now)
  smtp-source -c -s "$SESSIONS" -m "$SOAK" -F "$f" -f "$from" -t user@receiver.example "$SMTP" >/dev/null 2>"$WORK/soak.err" || true
  t1=$(now); c1=$(cpu "$DMARC_PID")
  kill "$SAMPLER" 2>/dev/null || true
  awk -v n="$SOAK" -v w="$(echo "$t0 $t1" | awk '{print $2 - $1}')" -v c="$(echo "$c0 $c1" | awk '{print $2 - $1}')" '
    { rss[NR] = $2 } END {
      q = int(NR / 4); if (q < 1) q = 1
      printf "soak      %d messages in %.0fs (%.2f CPU s); RSS KiB first/25%%/50%%/75%%/last/max: %d %d %d %d %d", n, w, c, rss[1], rss[q], rss[2*q], rss[3*q], rss[NR]
      m = 0; for (i in rss) if (rss[i] > m) m = rss[i]; printf " %d\n", m }' "$WORK/rss"
  echo "soak      smtp-source errors: $(grep -c . "$WORK/soak.err" || true)"
fi
echo "# verdict lines logged by dmarc milter: $(grep -c ': client=' "$WORK/dmarc-milter.log" || true)"
