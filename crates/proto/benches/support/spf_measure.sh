#!/bin/bash
# Per-message instructions and heap allocations of SPF alone (MAIL FROM + HELO, as the
# receiver runs them: no trace, warm record cache) over mail-bench, load-independent.
# Run from the workspace root: bash crates/proto/benches/support/spf_measure.sh
# The in-memory zone's own work (MapLookup::get) is shown apart: it stands for the DNS.
set -e
T=$(mktemp -d)
cargo build -q --release -p dmarc-proto --example spf_loop
B=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys;print(json.load(sys.stdin)["target_directory"])')/release/examples/spf_loop
for n in 1 4; do
  valgrind --tool=callgrind --callgrind-out-file=$T/c$n $B $n >/dev/null 2>&1
  valgrind --tool=dhat --dhat-out-file=$T/d$n $B $n >/dev/null 2>&1
done
python3 - "$T" <<'PY'
import json, re, subprocess, sys
t = sys.argv[1]
def ir(f):
    out = subprocess.run(['callgrind_annotate', '--inclusive=yes', '--threshold=100', f],
                         capture_output=True, text=True).stdout
    total = zone = 0
    for line in out.splitlines():
        m = re.match(r'\s*([\d,]+)\s+(?:\([ \d.%]+\)\s+)?(\S.*)$', line)
        if not m: continue
        v = int(m.group(1).replace(',', '')); name = m.group(2)
        if 'PROGRAM TOTALS' in line: total = v
        if re.search(r'map_lookup\.rs:spf_loop::map_lookup::MapLookup::get$', name):
            zone = max(zone, v)
    m = re.search(r'([\d,]+) \(100.0%\)\s+PROGRAM TOTALS', out)
    if m: total = int(m.group(1).replace(',', ''))
    return total, zone
def blocks(f):
    d = json.load(open(f)); ft = d['ftbl']; total = zone = 0
    for p in d['pps']:
        total += p['tbk']
        if any('(map_lookup.rs:' in ft[i] for i in p['fs']): zone += p['tbk']
    return total, zone
n = 3 * sum(1 for _ in open('../shared/corpora/mail-bench/cases.jsonl'))
(i1, z1), (i4, z4) = ir(f'{t}/c1'), ir(f'{t}/c4')
(b1, y1), (b4, y4) = blocks(f'{t}/d1'), blocks(f'{t}/d4')
print(f'per message: {(i4-i1)/n:.0f} instructions ({(z4-z1)/n:.0f} of them in the zone lookup), '
      f'{(b4-b1)/n:.2f} allocations ({(y4-y1)/n:.2f} of them in the zone lookup)')
PY
