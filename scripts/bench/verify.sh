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
have_perf=0
if perf stat -e task-clock true >/dev/null 2>&1; then have_perf=1; fi

# measure NAME CMD...: runs CMD R times (stdout to a file), prints the best user+sys and
# the best wall time. A failing exit (some messages fail DMARC) is not an error.
measure() {
  local name=$1; shift
  local best_cpu=999999 best_wall=999999 user sys wall cpu
  for _ in $(seq "$runs"); do
    if [ "$have_perf" = 1 ]; then
      perf stat -o "$tmp/stat" "$@" > "$tmp/out" 2>/dev/null || true
      user=$(awk '/seconds user/ {print $1}' "$tmp/stat")
      sys=$(awk '/seconds sys/ {print $1}' "$tmp/stat")
      wall=$(awk '/seconds time elapsed/ {print $1}' "$tmp/stat")
    else
      /usr/bin/time -f "%e %U %S" -o "$tmp/time" "$@" > "$tmp/out" 2>/dev/null || true
      read -r wall user sys < <(tail -1 "$tmp/time")
    fi
    cpu=$(echo "$user + $sys" | bc)
    if (( $(echo "$cpu < $best_cpu" | bc) )); then best_cpu=$cpu; best_user=$user; best_sys=$sys; fi
    if (( $(echo "$wall < $best_wall" | bc) )); then best_wall=$wall; fi
  done
  printf '  %-34s user+sys %7.3f s (user %.3f, sys %.3f), wall %7.3f s, %d lines\n' \
    "$name" "$best_cpu" "$best_user" "$best_sys" "$best_wall" "$(wc -l < "$tmp/out")"
}

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
