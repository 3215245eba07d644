#!/usr/bin/env bash
# Whole-process benchmark of `dmarc report parse` on large aggregate reports beside the
# anchor, mail-auth 0.13's `Report::parse_xml` over the same files in one process
# (crates/anchors: anchor-report), in the same run: user+sys CPU of the whole process,
# best of R runs (default 7), and wall time. The reports are generated (not in git) by
# big_aggregate.py: N records each (default 28000, about 6 MB of XML) and N/7.
# Needs release builds: cargo build --release -p dmarc -p dmarc-anchors.
# Usage: scripts/bench/report.sh [N] [R]
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-28000}
runs=${2:-7}
target="${CARGO_TARGET_DIR:-target}"
bin="$(cd "$target/release" && pwd)"
tmp=$(mktemp -d -t dmarc-report-bench.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
# shellcheck source=scripts/bench/measure.sh
. scripts/bench/measure.sh

big="$tmp/big.xml"
small="$tmp/small.xml"
python3 scripts/bench/big_aggregate.py "$n" | gunzip > "$big"
python3 scripts/bench/big_aggregate.py $((n / 7)) | gunzip > "$small"
echo "== aggregate reports of $n and $((n / 7)) records ($(du -k "$big" | cut -f1) KiB and $(du -k "$small" | cut -f1) KiB; best of $runs runs; $(nproc) cores)"
measure "dmarc report parse --json" "$bin/dmarc" report parse --json "$big" "$small"
measure "dmarc report parse (text)" "$bin/dmarc" report parse "$big" "$small"
measure "anchor-report (mail-auth 0.13)" "$bin/anchor-report" "$big" "$small"
