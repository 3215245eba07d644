#!/usr/bin/env bash
# Runs every test: starts what the tests need, then `cargo test`.
# The conformance suites are read from ../shared/corpora (beside the checkout).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -d ../shared/corpora ] && [ -z "${DMARC_CORPORA:-}" ]; then
  echo "scripts/test.sh: ../shared/corpora not found beside the checkout;" >&2
  echo "  put the shared corpora there or set DMARC_CORPORA=/path/to/corpora" >&2
  exit 1
fi

cargo test --workspace --locked "$@"
