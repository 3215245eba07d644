#!/usr/bin/env bash
# Starts a throwaway, private Sendmail on loopback for the milter's Sendmail end-to-end test
# (crates/dmarc/tests/milter_sendmail.rs) and stops it again on exit.
#
# Usage:
#   bash scripts/sendmail.sh -- COMMAND [ARGS...]
#       Start Sendmail, export the DMARC_TEST_SENDMAIL_* variables, run COMMAND, stop
#       Sendmail, exit with COMMAND's status. This is how scripts/test.sh runs the tests.
#   bash scripts/sendmail.sh [--env-file FILE]
#       Start Sendmail, print the `export DMARC_TEST_SENDMAIL_...` lines (and write them to
#       FILE), then wait until interrupted (Ctrl-C) and stop Sendmail.
#
# Debian's sendmail-bin conflicts with postfix, so it is never installed: its .debs
# (sendmail-bin, sendmail-base, sendmail-cf, and libwrap0, the one library it needs that
# the system may lack) are fetched with `apt-get download` into a cache directory
# (DMARC_SENDMAIL_CACHE, default ~/.cache/dmarc-sendmail) and unpacked there with
# `dpkg-deb -x`. Nothing of the system's mail configuration is read or changed.
#
# What it sets up, all under one temporary directory removed on exit:
#   - a sendmail.cf built with m4 from the package's cf files: one daemon on 127.0.0.1 at
#     a free port (`sendmail -bD`, in the foreground), hosts from a private hosts file and
#     no DNS, a private queue directory;
#   - `INPUT_MAIL_FILTER(dmarc, S=inet:PORT@127.0.0.1, F=T, ...)`: the milter, on a second
#     free port, in Sendmail's spelling; F=T (tempfail when the milter is not there);
#   - mail for receiver.example delivered by a tiny mailer into one Maildir (new/).
#
# Sendmail has no XCLIENT, so every message comes from 127.0.0.1.
#
# Exported variables:
#   DMARC_TEST_SENDMAIL_SMTP      127.0.0.1:PORT of the daemon
#   DMARC_TEST_SENDMAIL_MILTER    inet:PORT@127.0.0.1, where the milter must listen
#   DMARC_TEST_SENDMAIL_QUEUE     the queue directory (quarantined messages stay there)
#   DMARC_TEST_SENDMAIL_MAILDIR   the Maildir mail for receiver.example is delivered to
#   DMARC_TEST_SENDMAIL_VERSION   Sendmail's version
#
# Needs root (the daemon binds, delivers and drops privileges itself), apt-get and m4
# (installed from Debian's packages when missing).
set -euo pipefail

NAME=sendmail
SERVER=Sendmail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
lib_args "$@"

[ "$(id -u)" -eq 0 ] || lib_without "a private Sendmail needs root (it binds, delivers and drops privileges itself)"
export PATH="$PATH:/usr/sbin:/sbin"

# --- The unpacked packages ------------------------------------------------------------------
CACHE=${DMARC_SENDMAIL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dmarc-sendmail}
ROOT=$CACHE/root
if [ ! -x "$ROOT/usr/libexec/sendmail/sendmail" ] || [ ! -f "$ROOT/usr/share/sendmail/cf/m4/cf.m4" ] \
  || [ ! -e "$ROOT/usr/lib/x86_64-linux-gnu/libwrap.so.0" ]; then
  log "fetching Sendmail's Debian packages into $CACHE (apt-get download; not installed)"
  mkdir -p "$CACHE/debs"
  fetch() { (cd "$CACHE/debs" && apt-get download sendmail-bin sendmail-base sendmail-cf libwrap0 >&2); }
  fetch || { apt-get update >&2 && fetch; } || lib_without "apt-get download sendmail-bin sendmail-base sendmail-cf libwrap0 failed"
  rm -rf "$ROOT"
  for deb in "$CACHE"/debs/*.deb; do dpkg-deb -x "$deb" "$ROOT"; done
  # The package's binary is set-group-id: the loader would ignore LD_LIBRARY_PATH.
  chmod 0755 "$ROOT/usr/libexec/sendmail/sendmail"
fi
if ! command -v m4 >/dev/null; then
  log "installing m4 (apt-get) to build sendmail.cf"
  DEBIAN_FRONTEND=noninteractive apt-get install -y m4 >&2 \
    || { apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y m4 >&2; } \
    || lib_without "m4 is missing: apt-get install m4"
fi
SENDMAIL=$ROOT/usr/libexec/sendmail/sendmail
# Only Sendmail gets the unpacked libraries (not COMMAND). It runs in its own UTS
# namespace named mx.receiver.example: at start it wants the host's name qualified (with
# a dot) and otherwise sleeps 60 s and retries, before it reads its configuration.
sendmail() {
  # exec: started with &, the daemon's pid is then $! (cleanup stops it).
  LD_LIBRARY_PATH="$ROOT/usr/lib/x86_64-linux-gnu" \
    exec unshare -u sh -c 'hostname mx.receiver.example && exec "$0" "$@"' "$SENDMAIL" "$@"
}
CF=$ROOT/usr/share/sendmail/cf

# --- Temporary directory and cleanup --------------------------------------------------------
SM_PID=
stop_server() {
  if [ -n "$SM_PID" ]; then
    kill "$SM_PID" 2>/dev/null || true
    wait "$SM_PID" 2>/dev/null || true
  fi
}
lib_tempdir

mkdir -p "$DIR/etc" "$DIR/queue" "$DIR/mail/tmp" "$DIR/mail/new" "$DIR/mail/cur"
chmod 700 "$DIR/queue"
# The mailer runs as Sendmail's default user (daemon), not root.
chmod 1777 "$DIR/mail" "$DIR/mail/tmp" "$DIR/mail/new" "$DIR/mail/cur"
cat >"$DIR/deliver" <<'EOF'
#!/bin/sh
# Sendmail's mailer for receiver.example: the message on standard input into the Maildir
# $1 ($2, the recipient, is there because without $u Sendmail would speak SMTP to us).
dir=$1
name=$(date +%s.%N).$$.sendmail
cat >"$dir/tmp/$name" && mv "$dir/tmp/$name" "$dir/new/$name"
EOF
chmod 755 "$DIR/deliver"
printf '127.0.0.1\tmx.receiver.example localhost\n' >"$DIR/etc/hosts"
printf 'hosts\tfiles\naliases\tfiles\n' >"$DIR/etc/service.switch"
: >"$DIR/etc/aliases"
: >"$DIR/etc/helpfile"

write_config() {
  # Rules in sendmail.cf separate their fields by tabs.
  cat >"$DIR/etc/sendmail.mc" <<EOF
divert(-1)
# Throwaway configuration written by scripts/sendmail.sh; loopback only.
divert(0)dnl
include(\`$CF/m4/cf.m4')dnl
VERSIONID(\`dmarc scripts/sendmail.sh')dnl
OSTYPE(\`linux')dnl
define(\`MAIL_SETTINGS_DIR', \`$DIR/etc/')dnl
define(\`QUEUE_DIR', \`$DIR/queue')dnl
define(\`STATUS_FILE', \`$DIR/etc/statistics')dnl
define(\`ALIAS_FILE', \`$DIR/etc/aliases')dnl
define(\`HELP_FILE', \`$DIR/etc/helpfile')dnl
define(\`confPID_FILE', \`$DIR/sendmail.pid')dnl
define(\`confHOSTS_FILE', \`$DIR/etc/hosts')dnl
define(\`confSERVICE_SWITCH_FILE', \`$DIR/etc/service.switch')dnl
define(\`confHOST_STATUS_DIRECTORY', \`')dnl
define(\`confDOMAIN_NAME', \`mx.receiver.example')dnl
define(\`confDONT_PROBE_INTERFACES', \`True')dnl
define(\`confBIND_OPTS', \`-DNSRCH -DEFNAMES')dnl
define(\`confDELIVERY_MODE', \`interactive')dnl
define(\`confLOG_LEVEL', \`9')dnl
define(\`confPRIVACY_FLAGS', \`goaway')dnl
define(\`confTO_IDENT', \`0s')dnl
define(\`confMILTER_LOG_LEVEL', \`0')dnl
FEATURE(\`nocanonify')dnl
FEATURE(\`accept_unresolvable_domains')dnl
FEATURE(\`no_default_msa')dnl
RELAY_DOMAIN(\`receiver.example')dnl
DAEMON_OPTIONS(\`Port=$SMTP_PORT, Addr=127.0.0.1, Family=inet, Name=MTA')dnl
INPUT_MAIL_FILTER(\`dmarc', \`S=inet:$MILTER_PORT@127.0.0.1, F=T, T=C:5s;S:30s;R:30s;E:60s')dnl
MAILER(\`local')dnl
MAILER(\`smtp')dnl
MAILER_DEFINITIONS
Mmaildir,	P=$DIR/deliver, F=lsDFMn, S=EnvFromSMTP/HdrFromSMTP, R=EnvToSMTP/HdrFromSMTP,
		T=DNS/RFC822/SMTP, A=deliver $DIR/mail \$u
LOCAL_RULE_0
R\$+ < @ receiver.example . >	\$#maildir \$: \$1	mail for receiver.example into the Maildir
EOF
  m4 "$DIR/etc/sendmail.mc" >"$DIR/etc/sendmail.cf"
}

# --- Start ----------------------------------------------------------------------------------
for attempt in 1 2 3 4 5; do
  SMTP_PORT=$(pick_port)
  MILTER_PORT=$(pick_port)
  [ "$SMTP_PORT" = "$MILTER_PORT" ] && continue
  write_config
  sendmail -C "$DIR/etc/sendmail.cf" -bD -q30m >"$DIR/sendmail.out" 2>&1 &
  SM_PID=$!
  for _ in $(seq 100); do
    smtp_ready "$SMTP_PORT" && break
    kill -0 "$SM_PID" 2>/dev/null || break
    sleep 0.1
  done
  smtp_ready "$SMTP_PORT" && break
  kill "$SM_PID" 2>/dev/null || true
  wait "$SM_PID" 2>/dev/null || true
  SM_PID=
  log "attempt $attempt: sendmail did not start (port $SMTP_PORT):"
  sed 's/^/  /' "$DIR/sendmail.out" >&2
done
[ -n "$SM_PID" ] || { log "giving up: sendmail would not start"; exit 1; }

VERSION=$(sendmail -C "$DIR/etc/sendmail.cf" -d0.1 -bt </dev/null 2>/dev/null | awk '/^Version/ {print $2; exit}')
export DMARC_TEST_SENDMAIL_SMTP="127.0.0.1:$SMTP_PORT"
export DMARC_TEST_SENDMAIL_MILTER="inet:$MILTER_PORT@127.0.0.1"
export DMARC_TEST_SENDMAIL_QUEUE="$DIR/queue"
export DMARC_TEST_SENDMAIL_MAILDIR="$DIR/mail"
export DMARC_TEST_SENDMAIL_VERSION="$VERSION"

log "sendmail $VERSION running: 127.0.0.1:$SMTP_PORT, milter expected on inet:$MILTER_PORT@127.0.0.1, queue $DIR/queue"

lib_run DMARC_TEST_SENDMAIL_ "$DIR/sendmail.out" SMTP MILTER QUEUE MAILDIR VERSION
wait "$SM_PID"
