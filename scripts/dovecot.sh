#!/usr/bin/env bash
# Starts a throwaway Dovecot IMAP server on loopback for the IMAP ingestion tests
# (crates/ingest/tests/imap.rs) and stops it again on exit.
#
# Usage:
#   bash scripts/dovecot.sh -- COMMAND [ARGS...]
#       Start Dovecot, export the DMARC_TEST_IMAP_* variables, run COMMAND, stop Dovecot,
#       exit with COMMAND's status. This is how scripts/test.sh runs the tests:
#         bash scripts/dovecot.sh -- cargo test --workspace --locked
#   bash scripts/dovecot.sh [--env-file FILE]
#       Start Dovecot, print the `export DMARC_TEST_IMAP_...` lines (and write them to FILE),
#       then wait in the foreground until interrupted (Ctrl-C) and stop Dovecot. Paste the
#       lines into another shell and run `cargo test -p dmarc-ingest --test imap` there.
#
# What it sets up, all under one temporary directory removed on exit:
#   - a private CA and a server certificate for localhost, 127.0.0.1 and 127.0.0.2 (openssl);
#   - IMAP with STARTTLS on a free loopback port and implicit-TLS IMAPS on another;
#   - a passwd-file user with a plaintext password (random per run), Maildir mail storage;
#   - on 127.0.0.2 the same listeners, but the server advertises neither MOVE, UIDPLUS nor
#     IDLE, so that the COPY + STORE \Deleted + EXPUNGE fallback and polling are exercised.
#
# Exported variables:
#   DMARC_TEST_IMAP_HOST           127.0.0.1
#   DMARC_TEST_IMAP_NOMOVE_HOST    127.0.0.2 (no MOVE, UIDPLUS or IDLE advertised)
#   DMARC_TEST_IMAP_PORT           STARTTLS port (plaintext allowed on loopback only)
#   DMARC_TEST_IMAP_TLS_PORT       implicit-TLS port
#   DMARC_TEST_IMAP_USER           user name
#   DMARC_TEST_IMAP_PASSWORD       password
#   DMARC_TEST_IMAP_CA_FILE        PEM file of the CA that signed the server certificate
#
# Dovecot is installed from Debian's packages (dovecot-imapd) when missing; that needs root.
set -euo pipefail

NAME=dovecot
SERVER=Dovecot
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
lib_args "$@"

# --- Install -------------------------------------------------------------------------------
DOVECOT=$(command -v dovecot || true)
[ -z "$DOVECOT" ] && [ -x /usr/sbin/dovecot ] && DOVECOT=/usr/sbin/dovecot
if [ -z "$DOVECOT" ]; then
  if [ "$(id -u)" -ne 0 ]; then
    log "dovecot is not installed; run as root or: sudo apt-get install -y dovecot-imapd"
    exit 1
  fi
  log "installing dovecot-imapd from the Debian packages"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y dovecot-imapd >&2; then
    apt-get update >&2
    apt-get install -y dovecot-imapd >&2
  fi
  # The package's own service is not wanted; we run our own instance.
  if command -v service >/dev/null; then service dovecot stop >/dev/null 2>&1 || true; fi
  DOVECOT=/usr/sbin/dovecot
fi
command -v openssl >/dev/null || { log "openssl is required"; exit 1; }

# --- Temporary directory and cleanup --------------------------------------------------------
DOVECOT_PID=""
stop_server() {
  if [ -n "$DOVECOT_PID" ] && kill -0 "$DOVECOT_PID" 2>/dev/null; then
    kill "$DOVECOT_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$DOVECOT_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$DOVECOT_PID" 2>/dev/null || true
  fi
}
lib_tempdir

# --- Certificates ---------------------------------------------------------------------------
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -subj "/CN=dmarc test CA" -keyout "$DIR/ca.key" -out "$DIR/ca.pem" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" \
  2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -subj "/CN=localhost" -keyout "$DIR/server.key" -out "$DIR/server.csr" 2>/dev/null
cat >"$DIR/server.ext" <<'EOF'
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,IP:127.0.0.1,IP:127.0.0.2
EOF
openssl x509 -req -in "$DIR/server.csr" -CA "$DIR/ca.pem" -CAkey "$DIR/ca.key" \
  -CAcreateserial -days 2 -extfile "$DIR/server.ext" -out "$DIR/server.pem" 2>/dev/null
chmod 644 "$DIR/ca.pem"

# --- Users ----------------------------------------------------------------------------------
USER_NAME=dmarc
PASSWORD="pw-$(openssl rand -hex 12)"
if [ "$(id -u)" -eq 0 ]; then
  # Dovecot never runs mail processes as root; use the package's unprivileged user.
  MAIL_USER=$(id -u dovecot >/dev/null 2>&1 && echo dovecot || echo nobody)
  PRIVILEGED=1
else
  MAIL_USER=$(id -un)
  PRIVILEGED=0
fi
MAIL_UID=$(id -u "$MAIL_USER")
MAIL_GID=$(id -g "$MAIL_USER")
mkdir -p "$DIR/mail" "$DIR/run" "$DIR/state"
chown "$MAIL_UID:$MAIL_GID" "$DIR/mail"
printf '%s:{PLAIN}%s:%s:%s::%s/mail/%s::\n' \
  "$USER_NAME" "$PASSWORD" "$MAIL_UID" "$MAIL_GID" "$DIR" "$USER_NAME" >"$DIR/passwd"
chmod 644 "$DIR/passwd"

# --- Ports: free on both loopback addresses the server listens on --------------------------
ADDRS=(127.0.0.1 127.0.0.2)

write_config() {
  local rootless=""
  if [ "$PRIVILEGED" -eq 0 ]; then
    rootless="default_internal_user = $MAIL_USER
default_internal_group = $(id -gn)
default_login_user = $MAIL_USER
service anvil {
  chroot =
}
service imap-login {
  chroot =
}"
  fi
  cat >"$DIR/dovecot.conf" <<EOF
# Throwaway configuration written by scripts/dovecot.sh; loopback only.
base_dir = $DIR/run
state_dir = $DIR/state
instance_name = dmarc-test-$$
log_path = $DIR/dovecot.log
protocols = imap
listen = 127.0.0.1, 127.0.0.2
ssl = yes
ssl_cert = <$DIR/server.pem
ssl_key = <$DIR/server.key
ssl_min_protocol = TLSv1.2
# Connections from loopback count as secure, so plaintext LOGIN works there (for
# --imap-insecure-plaintext) and nowhere else.
disable_plaintext_auth = yes
auth_mechanisms = plain login
# Tests try wrong passwords on purpose (the report sender's SMTP AUTH through Postfix).
auth_failure_delay = 0
first_valid_uid = $MAIL_UID
last_valid_uid = 0
mail_location = maildir:~/Maildir
mail_privileged_group =
passdb {
  driver = passwd-file
  args = scheme=PLAIN $DIR/passwd
}
userdb {
  driver = passwd-file
  args = $DIR/passwd
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1, 127.0.0.2
    port = $IMAP_PORT
  }
  inet_listener imaps {
    address = 127.0.0.1, 127.0.0.2
    port = $IMAPS_PORT
    ssl = yes
  }
}
# SASL for the private Postfix of scripts/postfix.sh (smtpd_sasl_type = dovecot), so that
# the report sender's SMTP AUTH is tested against a real server.
service auth {
  inet_listener auth-smtp {
    address = 127.0.0.1
    port = $AUTH_PORT
  }
}
service stats {
  unix_listener stats-reader {
    mode = 0666
  }
  unix_listener stats-writer {
    mode = 0666
  }
}
local 127.0.0.2 {
  protocol imap {
    # No MOVE (RFC 6851), no UIDPLUS (RFC 4315), no IDLE (RFC 2177): clients must fall
    # back to COPY + STORE \\Deleted + EXPUNGE, and poll.
    imap_capability = IMAP4rev1 LITERAL+ SASL-IR LOGIN-REFERRALS ID ENABLE SORT NAMESPACE
  }
}
$rootless
EOF
}

# Until the auth process is up, Dovecot greets with "* OK Waiting for authentication process".
greeting_ready() {
  local line
  line=$(timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"; head -n 1 <&3' _ "$IMAP_PORT" 2>/dev/null) || return 1
  case "$line" in *CAPABILITY*) return 0 ;; *) return 1 ;; esac
}

# --- Start ----------------------------------------------------------------------------------
started=0
for attempt in 1 2 3 4 5; do
  IMAP_PORT=$(pick_port "${ADDRS[@]}")
  IMAPS_PORT=$(pick_port "${ADDRS[@]}")
  AUTH_PORT=$(pick_port "${ADDRS[@]}")
  [ "$(printf '%s\n' "$IMAP_PORT" "$IMAPS_PORT" "$AUTH_PORT" | sort -u | wc -l)" -ne 3 ] && continue
  write_config
  : >"$DIR/dovecot.log"
  "$DOVECOT" -F -c "$DIR/dovecot.conf" >>"$DIR/dovecot.log" 2>&1 &
  DOVECOT_PID=$!
  for _ in $(seq 100); do
    if ! kill -0 "$DOVECOT_PID" 2>/dev/null; then break; fi
    if ! port_free "$IMAP_PORT" "${ADDRS[@]}" && (exec 3<>"/dev/tcp/127.0.0.1/$IMAPS_PORT") 2>/dev/null \
      && greeting_ready; then
      started=1; break
    fi
    sleep 0.1
  done
  [ "$started" -eq 1 ] && break
  log "attempt $attempt: dovecot did not start (ports $IMAP_PORT, $IMAPS_PORT):"
  sed 's/^/  /' "$DIR/dovecot.log" >&2
  kill "$DOVECOT_PID" 2>/dev/null || true
  wait "$DOVECOT_PID" 2>/dev/null || true
  DOVECOT_PID=""
done
if [ "$started" -ne 1 ]; then
  log "giving up: dovecot would not start"
  exit 1
fi

export DMARC_TEST_IMAP_HOST=127.0.0.1
export DMARC_TEST_IMAP_NOMOVE_HOST=127.0.0.2
export DMARC_TEST_IMAP_PORT="$IMAP_PORT"
export DMARC_TEST_IMAP_TLS_PORT="$IMAPS_PORT"
export DMARC_TEST_IMAP_USER="$USER_NAME"
export DMARC_TEST_IMAP_PASSWORD="$PASSWORD"
export DMARC_TEST_IMAP_CA_FILE="$DIR/ca.pem"
export DMARC_TEST_IMAP_AUTH_PORT="$AUTH_PORT"

log "dovecot $("$DOVECOT" --version | cut -d' ' -f1) running (pid $DOVECOT_PID): STARTTLS on 127.0.0.1:$IMAP_PORT, IMAPS on 127.0.0.1:$IMAPS_PORT, log $DIR/dovecot.log"

lib_run DMARC_TEST_IMAP_ "$DIR/dovecot.log" HOST NOMOVE_HOST PORT TLS_PORT USER PASSWORD CA_FILE AUTH_PORT
wait "$DOVECOT_PID"
