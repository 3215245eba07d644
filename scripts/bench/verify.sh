#!/usr/bin/env bash
# Whole-process benchmark of the receiver paths: `dmarc verify --batch` (SPF + DKIM + DMARC
# per message, JSON out) and `dmarc dkim verify` (text out) beside the anchors, mail-auth
# 0.13 doing the same work in one process (crates/anchors: anchor-verify, anchor-dkim),
# in the same run, on ../shared/corpora/mail-bench (300 messages) and on a generated corpus
# (gen-corpus, default 2000 messages, written once under target/bench-corpus-N). DNS is the
# corpus's zone file for both (ours reads zone.txt, mail-auth's caches are filled from
# zone.json, the same records). Figures: user+sys CPU of the whole process, best of R runs
# (default 7), measured with perf stat (or /usr/bin/time when perf is missing), plus wall.
# Needs release builds: cargo build --release -p dmarc -p dmarc-anchors.
# Usage: scripts/bench/verify.sh [N] [R]
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-2000}
runs=${2:-7}
target="${CARGO_TARGET_DIR:-target}"
bin="$(cd "$target/release" && pwd)"
gen="$(cd "$target" && pwd)/bench-corpus-$n"
[ -s "$gen/cases.jsonl" ] || "$bin/gen-corpus" "$gen" "$n"
tmp=$(mktemp -d -t dmarc-verify-bench.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
# shellcheck source=scripts/bench/measure.sh
. scripts/bench/measure.sh

corpus() {
  local dir=$1 now=1795400000
  local count
  count=$(grep -c . "$dir/cases.jsonl")
  echo "== $dir ($count messages; best of $runs runs; $(nproc) cores)"
  cd "$dir"
  measure "dmarc verify --batch (jobs=$(nproc))" "$bin/dmarc" verify --batch cases.jsonl --dns-zone zone.txt
  measure "dmarc verify --batch --jobs 1" "$bin/dmarc" verify --batch cases.jsonl --dns-zone zone.txt --jobs 1
  measure "anchor-verify (mail-auth 0.13)" "$bin/anchor-verify" cases.jsonl zone.json
  measure "dmarc dkim verify" "$bin/dmarc" dkim verify --dns-zone zone.txt --now "$now" messages/*.eml
  measure "dmarc dkim verify --json" "$bin/dmarc" dkim verify --json --dns-zone zone.txt --now "$now" messages/*.eml
  measure "anchor-dkim (mail-auth 0.13)" "$bin/anchor-dkim" zone.json messages/*.eml
  cd - >/dev/null
}

corpus "$(cd ../shared/corpora/mail-bench && pwd)"
corpus "$gen"
