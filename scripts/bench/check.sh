#!/usr/bin/env bash
# The `dmarc check` benchmark: N domains (default 100) checked by `dmarc check` (all at
# once) and by checkdmarc (its check_domains, one after the other as its command line
# does), both asking zone-server on loopback; whole-process wall and user+sys CPU time of
# each, best of R runs (default 5). Needs release builds and checkdmarc (pip install
# checkdmarc). Usage: scripts/bench/check.sh [N] [R]
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-100}
runs=${2:-5}
bin="${CARGO_TARGET_DIR:-target}/release"
tmp=$(mktemp -d -t dmarc-check-bench.XXXXXX)
trap 'kill "${server:-0}" 2>/dev/null || true; rm -rf "$tmp"' EXIT
python3 scripts/bench/check_zone.py "$n" > "$tmp/bench.zone" 2> "$tmp/domains"
"$bin/zone-server" --zone "$tmp/bench.zone" > "$tmp/addr" 2>/dev/null &
server=$!
for _ in $(seq 50); do [ -s "$tmp/addr" ] && break; sleep 0.1; done
addr=$(head -1 "$tmp/addr")
mapfile -t domains < "$tmp/domains"
measure() {
  local name=$1; shift
  local best_wall=999999 best_cpu=999999
  for _ in $(seq "$runs"); do
    /usr/bin/time -f "%e %U %S" -o "$tmp/time" "$@" > "$tmp/out" 2>/dev/null || true
    read -r wall user sys < <(tail -1 "$tmp/time")
    cpu=$(echo "$user + $sys" | bc)
    if (( $(echo "$wall < $best_wall" | bc) )); then best_wall=$wall; fi
    if (( $(echo "$cpu < $best_cpu" | bc) )); then best_cpu=$cpu; fi
  done
  printf '%-12s %3d domains: wall %6.2f s, user+sys %6.2f s (best of %d)\n' "$name" "$n" "$best_wall" "$best_cpu" "$runs"
}
measure "dmarc check" "$bin/dmarc" check --json --no-fetch --nameserver "$addr" "${domains[@]}"
lines=$(wc -l < "$tmp/out")
[ "$lines" -eq "$n" ] || { echo "dmarc check printed $lines reports, expected $n" >&2; exit 1; }
measure "checkdmarc" python3 scripts/bench/checkdmarc_run.py "$addr" "${domains[@]}"
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); assert len(r)==int(sys.argv[2]), len(r)' "$tmp/out" "$n"
