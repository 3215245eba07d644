#!/bin/bash
# Per-message instructions and heap allocations of SPF alone (MAIL FROM + HELO, as the
# receiver runs them: no trace, warm record cache) over mail-bench, load-independent.
# Run from the workspace root: bash crates/proto/benches/support/spf_measure.sh
# Counts are (4 rounds - 1 round) / (3 x the number of messages). The in-memory zone's
# own heap blocks (lower-cased key, answer vector, record copies) are counted by the
# example and shown apart: they stand for the DNS. Its instructions are included.
set -e
T=$(mktemp -d)
cargo build -q --release -p dmarc-proto --example spf_loop
B=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys;print(json.load(sys.stdin)["target_directory"])')/release/examples/spf_loop
for n in 1 4; do
  valgrind --tool=callgrind --callgrind-out-file=$T/c$n $B $n >/dev/null 2>&1
  valgrind --tool=dhat --dhat-out-file=$T/d$n $B $n >/dev/null 2>&1
done
ZONE=$($B 1 2>&1 | sed -n 's/^zone: .* and \([0-9.]*\) heap blocks per message$/\1/p')
python3 - "$T" "$ZONE" <<'PY'
import json, re, subprocess, sys
t, zone = sys.argv[1], float(sys.argv[2])
def ir(f):
    out = subprocess.run(['callgrind_annotate', f], capture_output=True, text=True).stdout
    return int(re.search(r'([\d,]+) \(100.0%\)\s+PROGRAM TOTALS', out).group(1).replace(',', ''))
def blocks(f):
    return sum(p['tbk'] for p in json.load(open(f))['pps'])
n = 3 * sum(1 for _ in open('../shared/corpora/mail-bench/cases.jsonl'))
i = (ir(f'{t}/c4') - ir(f'{t}/c1')) / n
b = (blocks(f'{t}/d4') - blocks(f'{t}/d1')) / n
print(f'per message: {i:.0f} instructions; {b:.2f} heap allocations, '
      f'of which {zone:.2f} in the zone lookup and {b - zone:.2f} in SPF')
PY
