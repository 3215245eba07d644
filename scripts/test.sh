#!/usr/bin/env bash
# Runs every test: starts what the tests need (PostgreSQL, Dovecot, Postfix; miltertest
# installed; dkimpy for the ARC agreement test), then `cargo test`, then the comparison of `dmarc check` with checkdmarc
# and of our outgoing reports read by parsedmarc (both installed with pip when missing, as root).
#
# * The conformance suites are read from ../shared/corpora (beside the checkout), or from
#   $DMARC_CORPORA.
# * The store's PostgreSQL tests need a server: unless DMARC_TEST_POSTGRES is already set,
#   this script installs PostgreSQL if it is missing (apt-get, as root), initialises a
#   throwaway cluster in a temporary directory (owned by the `postgres` user when running
#   as root), starts it on 127.0.0.1 at a free port from 55432 up, creates a database,
#   exports DMARC_TEST_POSTGRES=postgres://... and stops and deletes it on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -d ../shared/corpora ] && [ -z "${DMARC_CORPORA:-}" ]; then
  echo "scripts/test.sh: ../shared/corpora not found beside the checkout;" >&2
  echo "  put the shared corpora there or set DMARC_CORPORA=/path/to/corpora" >&2
  exit 1
fi

pg_bindir() {
  local d
  if command -v pg_ctl >/dev/null 2>&1 && command -v initdb >/dev/null 2>&1; then
    dirname "$(readlink -f "$(command -v pg_ctl)")"
    return 0
  fi
  for d in /usr/lib/postgresql/*/bin; do
    if [ -x "$d/postgres" ] && [ -x "$d/initdb" ]; then
      echo "$d"
      return 0
    fi
  done
  return 1
}

port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

start_postgres() {
  local bindir
  if ! bindir=$(pg_bindir); then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "scripts/test.sh: installing PostgreSQL (apt-get install -y postgresql)" >&2
      DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql >/dev/null \
        || { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql >/dev/null; }
      bindir=$(pg_bindir) || { echo "scripts/test.sh: PostgreSQL install failed" >&2; exit 1; }
    else
      echo "scripts/test.sh: PostgreSQL is not installed; install it (apt-get install postgresql)" >&2
      echo "  or set DMARC_TEST_POSTGRES=postgres://user@host:port/database" >&2
      exit 1
    fi
  fi

  PG_TMP=$(mktemp -d -t dmarc-pg.XXXXXX)
  local run=()
  if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
    chown postgres "$PG_TMP"
    run=(runuser -u postgres --)
  fi
  PG_RUN=("${run[@]}")

  local port=55432
  while port_in_use "$port"; do port=$((port + 1)); done

  "${run[@]}" "$bindir/initdb" -D "$PG_TMP/data" -A trust -U dmarc --no-sync -E UTF8 \
    >"$PG_TMP/initdb.log" 2>&1 || { cat "$PG_TMP/initdb.log" >&2; exit 1; }
  PG_CTL="$bindir/pg_ctl"
  trap stop_postgres EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  "${run[@]}" "$PG_CTL" -D "$PG_TMP/data" -l "$PG_TMP/server.log" -w -t 60 \
    -o "-h 127.0.0.1 -p $port -k $PG_TMP -c fsync=off -c max_connections=200" start >/dev/null \
    || { cat "$PG_TMP/server.log" >&2; exit 1; }
  "${run[@]}" "$bindir/createdb" -h 127.0.0.1 -p "$port" -U dmarc dmarc_test
  export DMARC_TEST_POSTGRES="postgres://dmarc@127.0.0.1:$port/dmarc_test"
  echo "scripts/test.sh: PostgreSQL at $DMARC_TEST_POSTGRES" >&2
}

stop_postgres() {
  if [ -n "${PG_TMP:-}" ] && [ -d "$PG_TMP/data" ]; then
    "${PG_RUN[@]}" "$PG_CTL" -D "$PG_TMP/data" -m fast -w stop >/dev/null 2>&1 \
      || "${PG_RUN[@]}" "$PG_CTL" -D "$PG_TMP/data" -m immediate -w stop >/dev/null 2>&1 \
      || true
    rm -rf "$PG_TMP"
  fi
  PG_TMP=
}

if [ -z "${DMARC_TEST_POSTGRES:-}" ]; then
  start_postgres
fi

# The milter's tests run miltertest (Debian's package, from OpenDKIM) as an independent
# MTA-side client (crates/milter/tests/it/miltertest.rs); they fail, saying so, without it.
if ! command -v miltertest >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "scripts/test.sh: installing miltertest (apt-get install -y miltertest)" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y miltertest >/dev/null \
      || { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y miltertest >/dev/null; }
  else
    echo "scripts/test.sh: miltertest is not installed, so the miltertest tests will fail: apt-get install miltertest" >&2
  fi
fi

# The reports-out test (crates/dmarc/tests/report_send_cli.rs) validates every aggregate
# report it makes with xmllint against the RFC 9990 XSD (Debian libxml2-utils); it fails,
# saying so, without it.
if ! command -v xmllint >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "scripts/test.sh: installing xmllint (apt-get install -y libxml2-utils)" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y libxml2-utils >/dev/null \
      || { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y libxml2-utils >/dev/null; }
  else
    echo "scripts/test.sh: xmllint is not installed, so the report-send test will fail: apt-get install libxml2-utils" >&2
  fi
fi

# The dashboard's browser test (crates/dmarc/tests/serve_cli.rs) loads every page in
# headless Chromium (Debian's chromium); it fails, saying so, without it.
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "scripts/test.sh: installing Chromium (apt-get install -y chromium)" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y chromium >/dev/null \
      || { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium >/dev/null; }
  else
    echo "scripts/test.sh: chromium is not installed, so the dashboard browser test will fail: apt-get install chromium" >&2
  fi
fi

# The IMAP end-to-end tests (crates/ingest/tests/imap.rs) need a throwaway loopback Dovecot:
# scripts/dovecot.sh starts it, exports DMARC_TEST_IMAP_*, runs the command and stops it.
# The milter's end-to-end test (crates/dmarc/tests/milter_postfix.rs) and the reports-out
# test through Postfix (crates/dmarc/tests/report_postfix.rs: SMTP delivery, Postfix's
# 554/450 answers and its DSNs, STARTTLS with a test CA) need a private Postfix:
# scripts/postfix.sh starts one (as root), exports DMARC_TEST_POSTFIX_*, runs the command and
# stops it. The milter's Sendmail test (crates/dmarc/tests/milter_sendmail.rs) needs a
# private Sendmail: scripts/sendmail.sh unpacks Debian's packages (never installed: they
# conflict with postfix), starts one, exports DMARC_TEST_SENDMAIL_*, runs the command.
# The ARC agreement test (crates/dmarc/tests/arc_cli.rs) runs dkimpy's ARC verifier (PyPI;
# it needs authres too) over messages `dmarc arc seal` sealed.
if ! python3 -c 'import dkim, authres' >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ]; then
    echo "scripts/test.sh: installing dkimpy (pip install dkimpy authres)" >&2
    python3 -m pip install --quiet dkimpy authres >/dev/null 2>&1 \
      || python3 -m pip install --quiet --break-system-packages dkimpy authres >/dev/null \
      || { echo "scripts/test.sh: pip install dkimpy failed" >&2; exit 1; }
  else
    echo "scripts/test.sh: dkimpy is not installed, so the ARC agreement test will fail: python3 -m pip install dkimpy authres" >&2
  fi
fi

bash scripts/dovecot.sh -- bash scripts/postfix.sh -- bash scripts/sendmail.sh -- cargo test --workspace --locked "$@"

# `dmarc check` side by side with checkdmarc (PyPI) on the finding fixtures, both asking
# zone-server on loopback: equal SPF lookup counts, every checkdmarc problem found too,
# disagreements only as listed in scripts/checkdmarc_compare.py (crates/owner/CHECKDMARC.md).
if ! python3 -c 'import checkdmarc' >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ]; then
    echo "scripts/test.sh: installing checkdmarc (pip install checkdmarc)" >&2
    python3 -m pip install --quiet checkdmarc >/dev/null 2>&1 \
      || python3 -m pip install --quiet --break-system-packages checkdmarc >/dev/null \
      || { echo "scripts/test.sh: pip install checkdmarc failed" >&2; exit 1; }
  else
    echo "scripts/test.sh: checkdmarc is not installed; install it with: python3 -m pip install checkdmarc" >&2
    exit 1
  fi
fi
cargo build --locked -q -p dmarc -p zone-server
bin="${CARGO_TARGET_DIR:-target}/debug"
python3 scripts/checkdmarc_compare.py "$bin/dmarc" "$bin/zone-server" crates/owner/tests/fixtures/findings.zone


# Our outgoing reports (aggregate and failure, `dmarc report send --dry-run` over the
# mail-bench observations) read by parsedmarc (PyPI) as an independent reader: the same
# records, counts, periods and failure-report fields as `dmarc report parse`.
if ! python3 -c 'import parsedmarc' >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ]; then
    echo "scripts/test.sh: installing parsedmarc (pip install parsedmarc)" >&2
    python3 -m pip install --quiet parsedmarc >/dev/null 2>&1 \
      || python3 -m pip install --quiet --break-system-packages parsedmarc >/dev/null \
      || { echo "scripts/test.sh: pip install parsedmarc failed" >&2; exit 1; }
  else
    echo "scripts/test.sh: parsedmarc is not installed; install it with: python3 -m pip install parsedmarc" >&2
    exit 1
  fi
fi
python3 scripts/parsedmarc_compare.py "$bin/dmarc" "${DMARC_CORPORA:-../shared/corpora}"
