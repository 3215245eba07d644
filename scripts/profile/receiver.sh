#!/bin/bash
# Needs valgrind (callgrind, DHAT) and python3.
# Per-message instruction and allocation counts of receiver::verify_message over mail-bench
# (warm caches), load-independent. Run from the workspace root: bash scripts/profile/receiver.sh [top-N]
# Prints: instructions per message (callgrind, 4 rounds minus 1 round, /900), allocations per
# message by area (dhat), and the top inclusive functions per message.
set -e
N=${1:-60}
T=$(mktemp -d)
cargo build -q --release -p dmarc-receiver --example receiver_loop
B=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys;print(json.load(sys.stdin)["target_directory"])')/release/examples/receiver_loop
valgrind --tool=callgrind --callgrind-out-file=$T/c1 $B 1 2>&1 | grep refs | sed 's/^/1 round: /'
valgrind --tool=callgrind --callgrind-out-file=$T/c4 $B 4 2>&1 | grep refs | sed 's/^/4 rounds: /'
valgrind --tool=dhat --dhat-out-file=$T/d1 $B 1 2>&1 | grep "Total:" | sed 's/^/1 round: /'
valgrind --tool=dhat --dhat-out-file=$T/d4 $B 4 2>&1 | grep "Total:" | sed 's/^/4 rounds: /'
echo "== allocations per message by area, then by site"
python3 scripts/profile/dhatdiff.py $T/d1 $T/d4 900 | head -40
echo "== inclusive instructions per message (functions)"
python3 scripts/profile/cgdiff.py $T/c1 $T/c4 900 400 | grep -v "=>" | head -$N
echo "(raw outputs in $T)"
