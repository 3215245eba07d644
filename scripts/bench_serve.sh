#!/usr/bin/env bash
# The dashboard on a generated store: every page of `dmarc serve` timed with curl (wall time
# of the whole answer), the first request after start and then warm (best of 3).
#
#   scripts/bench_serve.sh [ROWS] [DIR]
#
# ROWS report rows (default 10,000,000) are generated into DIR/bench.sqlite3 by the store's
# gen_store example (as scripts/bench_rollout.sh does) unless already there.
set -euo pipefail
ROWS=${1:-10000000}
DIR=${2:-/tmp/dmarc-bench-serve}
DB=$DIR/bench.sqlite3
cd "$(dirname "$0")/.."
: "${CARGO_TARGET_DIR:=target}"
BIN=$CARGO_TARGET_DIR/release/dmarc
GEN=$CARGO_TARGET_DIR/release/examples/gen_store
mkdir -p "$DIR"
if [ ! -x "$BIN" ] || [ ! -x "$GEN" ]; then
  cargo build --release -p dmarc --bin dmarc -p dmarc-store --example gen_store
fi
if [ ! -e "$DIR/generated-$ROWS" ]; then
  /usr/bin/time -f "generate: %e s wall, %U s user, %S s sys, %M KB" "$GEN" "$DB" "$ROWS" "$DIR"
  touch "$DIR/generated-$ROWS"
fi
"$BIN" serve --db "$DB" --listen 127.0.0.1:0 --dns-zone "$DIR/bench.zone" 2>"$DIR/serve.log" &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q listening "$DIR/serve.log" && break; sleep 0.1; done
URL=$(grep -o 'http://[^/]*' "$DIR/serve.log")
ID=$(curl -s "$URL/api/reports" | grep -o '"id": [0-9]*' | head -1 | grep -o '[0-9]*' || true)
IP=$(curl -s "$URL/api/reports/$ID" | grep -o '"source_ip": "[^"]*"' | head -1 | cut -d'"' -f4 || true)
PAGES=("/" "/domain/example.com" "/source/$IP" "/reports" "/reports/$ID" "/failures" "/tls"
  "/rejected" "/alerts" "/?since=2026-01-01&domain=example.com" "/api/summary"
  "/?format=csv&table=domains")
for p in "${PAGES[@]}"; do
  first=$(curl -s -m 600 -o /dev/null -w '%{time_total}' "$URL$p" || echo timeout)
  best=999
  for _ in 1 2 3; do
    t=$(curl -s -m 600 -o /dev/null -w '%{time_total}' "$URL$p" || echo 999)
    best=$(echo "$t $best" | awk '{print ($1 < $2) ? $1 : $2}')
  done
  printf '%-45s first %8s s   then best of 3 %8s s\n' "$p" "$first" "$best"
done
ps -o user=,time=,rss= -p $PID | awk '{print "server: cpu time " $2 ", rss " $3 " KB"}'
