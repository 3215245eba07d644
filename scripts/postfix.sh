#!/usr/bin/env bash
# Starts a throwaway, private Postfix on loopback for the milter's end-to-end tests
# (crates/dmarc/tests/milter_postfix.rs) and stops it again on exit.
#
# Usage:
#   bash scripts/postfix.sh -- COMMAND [ARGS...]
#       Start Postfix, export the DMARC_TEST_POSTFIX_* variables, run COMMAND, stop
#       Postfix, exit with COMMAND's status. This is how scripts/test.sh runs the tests.
#   bash scripts/postfix.sh [--env-file FILE]
#       Start Postfix, print the `export DMARC_TEST_POSTFIX_...` lines (and write them to
#       FILE), then wait until interrupted (Ctrl-C) and stop Postfix.
#
# What it sets up, all under one temporary directory removed on exit (nothing of the
# system's Postfix configuration is used or changed):
#   - smtpd on 127.0.0.1 at a free port, every client allowed XCLIENT
#     (smtpd_authorized_xclient_hosts), so a test can give each message the client IP
#     and HELO of its case;
#   - smtpd_milters pointing at a second free port, where the test starts the milter;
#     milter_protocol = 6, milter_default_action = tempfail (a milter that is not there
#     or misbehaves shows as 451, never as a silent pass);
#   - the domain receiver.example delivered by virtual(8) into one Maildir;
#   - for the reports-out test (crates/dmarc/tests/report_postfix.rs): a second smtpd
#     without milters; reports.example delivered into a Maildir of its own, except
#     bounces@reports.example (the envelope sender of report mail), which has another;
#     three destinations that fail the way real ones do: bounced.example has no
#     users, and that smtpd does not check recipients, so its mail is accepted and
#     then bounced by virtual(8) as an unknown user (a DSN back to the sender),
#     refused.example is refused at RCPT with 554 (a `reject` access map),
#     later.example with 450;
#   - a third smtpd like the second that offers STARTTLS, with a certificate for
#     127.0.0.1 and localhost signed by a CA made here with openssl (the test trusts
#     that CA with `[transport] ca_file`); it records the TLS use in Received:;
#   - the log in a file (maillog_file); no DNS is needed.
#
# Exported variables:
#   DMARC_TEST_POSTFIX_SMTP      127.0.0.1:PORT of smtpd
#   DMARC_TEST_POSTFIX_RELAY     127.0.0.1:PORT of the smtpd without milters
#   DMARC_TEST_POSTFIX_TLS_RELAY 127.0.0.1:PORT of the same offering STARTTLS
#   DMARC_TEST_POSTFIX_TLS_CA    the PEM certificate of the CA that signed its certificate
#   DMARC_TEST_POSTFIX_AUTH_RELAY 127.0.0.1:PORT of an smtpd demanding STARTTLS and SMTP AUTH
#                                (set only when run inside scripts/dovecot.sh, whose user
#                                and password it accepts; empty otherwise)
#   DMARC_TEST_POSTFIX_MILTER    inet:127.0.0.1:PORT the milter must listen on
#   DMARC_TEST_POSTFIX_CONFIG    the configuration directory (postqueue -c DIR -j)
#   DMARC_TEST_POSTFIX_MAILDIR   the Maildir mail for receiver.example is delivered to
#   DMARC_TEST_POSTFIX_REPORTS_MAILDIR  the Maildir of reports.example
#   DMARC_TEST_POSTFIX_BOUNCES_MAILDIR  the Maildir of bounces@reports.example
#   DMARC_TEST_POSTFIX_LOG       the log file
#
# Postfix (and openssl) are installed from Debian's packages when missing; that needs root. The
# instance runs as root (Postfix drops to its mail_owner for its daemons).
set -euo pipefail

NAME=postfix
SERVER=Postfix
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
lib_args "$@"

# --- Install -------------------------------------------------------------------------------
if ! command -v postfix >/dev/null && [ ! -x /usr/sbin/postfix ]; then
  if [ "$(id -u)" -ne 0 ]; then
    lib_without "postfix is not installed; run as root or: sudo apt-get install -y postfix"
  fi
  log "installing postfix from the Debian packages"
  export DEBIAN_FRONTEND=noninteractive
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections 2>/dev/null || true
  if ! apt-get install -y postfix >&2; then
    apt-get update >&2
    apt-get install -y postfix >&2
  fi
  # The package's own instance is not wanted; we run our own.
  if command -v service >/dev/null; then service postfix stop >/dev/null 2>&1 || true; fi
fi
export PATH="$PATH:/usr/sbin:/sbin"
if ! command -v openssl >/dev/null; then
  if [ "$(id -u)" -ne 0 ]; then
    lib_without "openssl is not installed; run as root or: sudo apt-get install -y openssl"
  fi
  log "installing openssl from the Debian packages"
  apt-get install -y openssl >&2 || { apt-get update >&2; apt-get install -y openssl >&2; }
fi
if [ "$(id -u)" -ne 0 ]; then
  lib_without "a private Postfix instance needs root (its daemons drop privileges themselves)"
fi
id postfix >/dev/null 2>&1 || { log "the postfix user is missing (is the package installed?)"; exit 1; }
getent group postdrop >/dev/null || { log "the postdrop group is missing (is the package installed?)"; exit 1; }

# --- Temporary directory and cleanup --------------------------------------------------------
STARTED=0
stop_server() {
  if [ "$STARTED" -eq 1 ]; then
    postfix -c "$DIR/etc" stop >/dev/null 2>&1 || true
    for _ in $(seq 50); do
      [ -e "$DIR/spool/pid/master.pid" ] || break
      kill -0 "$(tr -d ' ' <"$DIR/spool/pid/master.pid")" 2>/dev/null || break
      sleep 0.1
    done
  fi
}
lib_tempdir

MAIL_UID=$(id -u nobody)
MAIL_GID=$(id -g nobody)
mkdir -p "$DIR/etc" "$DIR/spool" "$DIR/data" "$DIR/mail/receiver"
chown -R "$MAIL_UID:$MAIL_GID" "$DIR/mail"
chown postfix "$DIR/data"

# --- TLS: a throwaway CA and the certificate of the STARTTLS listener ------------------------
mkdir -p "$DIR/tls"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=scripts-postfix-sh test CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -keyout "$DIR/tls/ca.key" -out "$DIR/tls/ca.pem" 2>"$DIR/tls/openssl.log" \
  && openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
    -keyout "$DIR/tls/server.key" -out "$DIR/tls/server.csr" 2>>"$DIR/tls/openssl.log" \
  && printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n' \
    >"$DIR/tls/server.ext" \
  && openssl x509 -req -in "$DIR/tls/server.csr" -CA "$DIR/tls/ca.pem" -CAkey "$DIR/tls/ca.key" \
    -CAcreateserial -days 2 -extfile "$DIR/tls/server.ext" -out "$DIR/tls/server.pem" \
    2>>"$DIR/tls/openssl.log" \
  || { log "openssl could not make the test certificates:"; sed 's/^/  /' "$DIR/tls/openssl.log" >&2; exit 1; }
chmod 644 "$DIR/tls/ca.pem" "$DIR/tls/server.pem"
chmod 600 "$DIR/tls/ca.key" "$DIR/tls/server.key"

write_config() {
  cat >"$DIR/etc/main.cf" <<EOF
# Throwaway configuration written by scripts/postfix.sh; loopback only.
compatibility_level = 3.6
queue_directory = $DIR/spool
data_directory = $DIR/data
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.receiver.example
mydomain = receiver.example
myorigin = \$myhostname
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
maillog_file_prefixes = $DIR
maillog_file = $DIR/maillog
alias_maps =
alias_database =
local_recipient_maps =
biff = no
append_dot_mydomain = no
smtpd_banner = \$myhostname ESMTP
smtpd_authorized_xclient_hosts = 127.0.0.0/8
smtpd_peername_lookup = no
smtpd_recipient_restrictions = check_recipient_access texthash:$DIR/etc/recipient_access,
  permit_mynetworks, reject_unauth_destination
smtpd_milters = inet:127.0.0.1:$MILTER_PORT
milter_protocol = 6
milter_default_action = tempfail
milter_connect_timeout = 5s
virtual_mailbox_domains = receiver.example, reports.example, bounced.example
virtual_mailbox_base = $DIR/mail
virtual_mailbox_maps = texthash:$DIR/etc/virtual_mailbox
virtual_uid_maps = static:$MAIL_UID
virtual_gid_maps = static:$MAIL_GID
virtual_minimum_uid = 1
smtp_dns_support_level = disabled
default_process_limit = 20
EOF
  cat >"$DIR/etc/virtual_mailbox" <<EOF
@receiver.example receiver/
bounces@reports.example bounces/
@reports.example reports/
EOF
  cat >"$DIR/etc/recipient_access" <<EOF
refused.example REJECT 5.7.1 refused by policy (scripts/postfix.sh)
later.example 450 4.2.0 try again later (scripts/postfix.sh)
EOF
  # With a Dovecot from scripts/dovecot.sh around it: a fourth smtpd that demands STARTTLS
  # and then SMTP AUTH against that Dovecot (smtpd_sasl_type = dovecot over loopback TCP),
  # refusing unauthenticated clients, for the report sender's `[transport] username`.
  auth_listener=""
  if [ -n "${DMARC_TEST_IMAP_AUTH_PORT:-}" ]; then
    auth_listener="127.0.0.1:$AUTH_RELAY_PORT inet n - n - - smtpd -o smtpd_milters= -o smtpd_reject_unlisted_recipient=no
  -o smtpd_tls_security_level=encrypt -o smtpd_tls_cert_file=$DIR/tls/server.pem
  -o smtpd_tls_key_file=$DIR/tls/server.key -o smtpd_tls_auth_only=yes
  -o smtpd_sasl_auth_enable=yes -o smtpd_sasl_type=dovecot
  -o smtpd_sasl_path=inet:127.0.0.1:$DMARC_TEST_IMAP_AUTH_PORT
  -o smtpd_sasl_authenticated_header=yes -o smtpd_tls_received_header=yes
  -o smtpd_client_restrictions=permit_sasl_authenticated,reject"
  fi
  cat >"$DIR/etc/master.cf" <<EOF
# service type  private unpriv  chroot  wakeup  maxproc command
127.0.0.1:$SMTP_PORT inet n - n - - smtpd
127.0.0.1:$RELAY_PORT inet n - n - - smtpd -o smtpd_milters= -o smtpd_reject_unlisted_recipient=no
127.0.0.1:$TLS_PORT inet n - n - - smtpd -o smtpd_milters= -o smtpd_reject_unlisted_recipient=no
  -o smtpd_tls_security_level=may -o smtpd_tls_cert_file=$DIR/tls/server.pem
  -o smtpd_tls_key_file=$DIR/tls/server.key -o smtpd_tls_received_header=yes
$auth_listener
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
}

# --- Start ----------------------------------------------------------------------------------
for attempt in 1 2 3 4 5; do
  SMTP_PORT=$(pick_port)
  MILTER_PORT=$(pick_port)
  RELAY_PORT=$(pick_port)
  TLS_PORT=$(pick_port)
  AUTH_RELAY_PORT=$(pick_port)
  if [ "$(printf '%s\n' "$SMTP_PORT" "$MILTER_PORT" "$RELAY_PORT" "$TLS_PORT" "$AUTH_RELAY_PORT" | sort -u | wc -l)" -ne 5 ]; then
    continue
  fi
  write_config
  if ! postfix -c "$DIR/etc" check >"$DIR/check.log" 2>&1; then
    log "postfix check failed:"; sed 's/^/  /' "$DIR/check.log" >&2; exit 1
  fi
  if postfix -c "$DIR/etc" start >"$DIR/start.log" 2>&1; then
    STARTED=1
    for _ in $(seq 100); do
      smtp_ready "$SMTP_PORT" && break
      sleep 0.1
    done
    smtp_ready "$SMTP_PORT" && break
    postfix -c "$DIR/etc" stop >/dev/null 2>&1 || true
    STARTED=0
  fi
  log "attempt $attempt: postfix did not start (port $SMTP_PORT):"
  sed 's/^/  /' "$DIR/start.log" >&2
  [ -f "$DIR/maillog" ] && tail -n 20 "$DIR/maillog" | sed 's/^/  /' >&2
done
if [ "$STARTED" -ne 1 ]; then
  log "giving up: postfix would not start"
  exit 1
fi

export DMARC_TEST_POSTFIX_SMTP="127.0.0.1:$SMTP_PORT"
export DMARC_TEST_POSTFIX_RELAY="127.0.0.1:$RELAY_PORT"
export DMARC_TEST_POSTFIX_TLS_RELAY="127.0.0.1:$TLS_PORT"
export DMARC_TEST_POSTFIX_TLS_CA="$DIR/tls/ca.pem"
if [ -n "${DMARC_TEST_IMAP_AUTH_PORT:-}" ]; then
  export DMARC_TEST_POSTFIX_AUTH_RELAY="127.0.0.1:$AUTH_RELAY_PORT"
else
  export DMARC_TEST_POSTFIX_AUTH_RELAY=""
fi
export DMARC_TEST_POSTFIX_MILTER="inet:127.0.0.1:$MILTER_PORT"
export DMARC_TEST_POSTFIX_CONFIG="$DIR/etc"
export DMARC_TEST_POSTFIX_MAILDIR="$DIR/mail/receiver"
export DMARC_TEST_POSTFIX_REPORTS_MAILDIR="$DIR/mail/reports"
export DMARC_TEST_POSTFIX_BOUNCES_MAILDIR="$DIR/mail/bounces"
export DMARC_TEST_POSTFIX_LOG="$DIR/maillog"

log "postfix $(postconf -c "$DIR/etc" -h mail_version) running: smtpd on 127.0.0.1:$SMTP_PORT (without milters on $RELAY_PORT, with STARTTLS on $TLS_PORT), milter expected on 127.0.0.1:$MILTER_PORT, log $DIR/maillog"

lib_run DMARC_TEST_POSTFIX_ "$DIR/maillog" \
  SMTP RELAY TLS_RELAY TLS_CA AUTH_RELAY MILTER CONFIG MAILDIR REPORTS_MAILDIR BOUNCES_MAILDIR LOG
while kill -0 "$(tr -d ' ' <"$DIR/spool/pid/master.pid")" 2>/dev/null; do sleep 1; done
