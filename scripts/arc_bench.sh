#!/usr/bin/env bash
# Whole-process ARC validation: `dmarc arc verify` over N copies of a message sealed over
# three hops (RSA-2048), beside mail-auth 0.13 doing the same (the dev-only example
# crates/proto/examples/arc_anchor_mail_auth.rs), both in release builds, user+sys CPU
# from /usr/bin/time. Keys come from a zone file (dmarc) and the same records as JSON
# (mail-auth's warm cache). Run from the workspace root: N=2000 bash scripts/arc_bench.sh
# Each round runs three processes in turn: ours by default (the chain status plus
# oldest-pass: six RSA verifications for a passing 3-hop chain), ours with
# --no-oldest-pass (only what the status needs: the newest AMS and every seal, four, the
# same work as mail-auth, which computes no oldest-pass), and the anchor.
set -euo pipefail
N=${N:-2000}
ROUNDS=${ROUNDS:-3}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cargo build --release --locked -q -p dmarc --bin dmarc
cargo build --release --locked -q -p dmarc-proto --example arc_anchor_mail_auth
TARGET=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys;print(json.load(sys.stdin)["target_directory"])')
DMARC=$TARGET/release/dmarc
ANCHOR=$TARGET/release/examples/arc_anchor_mail_auth
NOW=$(date +%s)
: > "$T/zone.txt"
for d in forward.example lists.example relay.example; do
  "$DMARC" dkim keygen --domain $d --selector arc --algorithm rsa-2048 --out "$T/$d.pem" >> "$T/zone.txt" 2>/dev/null
done
python3 - "$T" <<'PY'
import json, sys
t = sys.argv[1]
z = {}
for line in open(f"{t}/zone.txt"):
    name, rest = line.split(" IN TXT ")
    z[name.rstrip(".")] = "".join(rest.split('"')[1::2])
json.dump(z, open(f"{t}/zone.json", "w"))
PY
first=$(head -1 ../shared/corpora/mail-bench/cases.jsonl | python3 -c 'import json,sys;print(json.load(sys.stdin)["file"])')
cp "../shared/corpora/mail-bench/$first" "$T/m0.eml"
i=0
for d in forward.example lists.example relay.example; do
  "$DMARC" arc seal "$T/m$i.eml" --domain $d --selector arc --key "$T/$d.pem" \
    --authserv-id mx.$d --auth-results "spf=pass smtp.mailfrom=hop$i.example" \
    --now "$NOW" --dns-zone "$T/zone.txt" > "$T/m$((i+1)).eml"
  i=$((i+1))
done
mkdir "$T/copies"
for n in $(seq 1 "$N"); do cp "$T/m3.eml" "$T/copies/$n.eml"; done
"$DMARC" arc verify --now "$NOW" --dns-zone "$T/zone.txt" "$T/m3.eml"
"$ANCHOR" "$T/zone.json" "$T/m3.eml"
echo "$N copies of a $(wc -c < "$T/m3.eml")-byte message with 3 ARC sets; user+sys seconds (wall):"
for r in $(seq 1 "$ROUNDS"); do
  /usr/bin/time -f "dmarc arc verify: %U+%S s (%e s wall)" \
    "$DMARC" arc verify --now "$NOW" --dns-zone "$T/zone.txt" "$T"/copies/*.eml > /dev/null
  /usr/bin/time -f "dmarc arc verify --no-oldest-pass: %U+%S s (%e s wall)" \
    "$DMARC" arc verify --no-oldest-pass --now "$NOW" --dns-zone "$T/zone.txt" "$T"/copies/*.eml > /dev/null
  /usr/bin/time -f "mail-auth anchor:  %U+%S s (%e s wall)" \
    "$ANCHOR" "$T/zone.json" "$T"/copies/*.eml > /dev/null
done
