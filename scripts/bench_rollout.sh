#!/usr/bin/env bash
# The store readers on a generated store: `dmarc summary`, `dmarc sources` and
# `dmarc rollout` as whole processes (wall, user+sys CPU, peak RSS), beside the floor of
# SQLite's own shell running the largest of the queries (no anchor tool does this work).
#
#   scripts/bench_rollout.sh [ROWS] [DIR] [DB]
#
# ROWS report rows (default 10,000,000) are generated into DIR/bench.sqlite3 (or DB, e.g. a
# postgres:// URL) by `cargo run --release -p dmarc-store --example gen_store` unless the
# store is already there; DIR/bench.zone holds the senders' DNS records.
set -euo pipefail
ROWS=${1:-10000000}
DIR=${2:-/tmp/dmarc-bench-rollout}
DB=${3:-$DIR/bench.sqlite3}
cd "$(dirname "$0")/.."
: "${CARGO_TARGET_DIR:=target}"
BIN=$CARGO_TARGET_DIR/release/dmarc
GEN=$CARGO_TARGET_DIR/release/examples/gen_store
mkdir -p "$DIR"
if [ ! -x "$BIN" ] || [ ! -x "$GEN" ]; then
  cargo build --release -p dmarc --bin dmarc -p dmarc-store --example gen_store
fi
if [ ! -e "$DIR/generated-$ROWS-$(echo "$DB" | tr -c 'a-zA-Z0-9' _)" ]; then
  /usr/bin/time -f "generate: %e s wall, %U s user, %S s sys, %M KB" "$GEN" "$DB" "$ROWS" "$DIR"
  touch "$DIR/generated-$ROWS-$(echo "$DB" | tr -c 'a-zA-Z0-9' _)"
fi
run() {
  local label=$1; shift
  for i in 1 2 3; do
    /usr/bin/time -f "$label (run $i): %e s wall, %U s user, %S s sys, %M KB peak" "$@" >/dev/null
  done
}
run "summary" "$BIN" summary --db "$DB" --no-rdns --json
run "sources" "$BIN" sources example.com --db "$DB" --dns-zone "$DIR/bench.zone" --json
run "rollout" "$BIN" rollout example.com --db "$DB" --dns-zone "$DIR/bench.zone" --json
if [ "${DB#postgres}" = "$DB" ]; then
  Q="SELECT x.source_ip, r.policy_domain, x.header_from, x.dkim_aligned, x.spf_aligned, x.disposition, r.policy_p, r.policy_sp, SUM(x.message_count), COUNT(*) FROM aggregate_reports r JOIN aggregate_records x ON x.report = r.id WHERE (r.policy_domain = 'example.com' OR r.policy_domain LIKE '%.example.com' ESCAPE '\\') GROUP BY 1, 2, 3, 4, 5, 6, 7, 8;"
  run "floor: sqlite3 shell, the source-outcome query alone" sqlite3 "$DB" "$Q"
fi
du -sh "$DIR"
