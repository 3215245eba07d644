#!/usr/bin/env bash
# Builds every fuzz target (fuzz/, cargo-fuzz) and runs each for a short fixed time.
#
#   bash scripts/fuzz.sh [SECONDS]      default 5 seconds per target (what CI runs)
#   FUZZ_ASAN=1 bash scripts/fuzz.sh 600   with AddressSanitizer, on the nightly toolchain
#   FUZZ_SEED=0 bash scripts/fuzz.sh 600   a random seed per run (a campaign); the default,
#                                          seed 1, makes CI's short run repeat itself
#
# cargo-fuzz is installed when missing (`cargo install cargo-fuzz --locked`, about a minute).
# On the stable toolchain the targets build without a sanitizer (`-s none`); nightly adds
# AddressSanitizer. Seeds come from the outside suites (fuzz/seed.py) and from
# fuzz/regressions/<target>/, the inputs that once crashed a target. A crash fails the run and
# leaves the input in fuzz/artifacts/<target>/: turn it into a regression test in the crate
# it belongs to and copy it into fuzz/regressions/<target>/.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds="${1:-5}"

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "scripts/fuzz.sh: installing cargo-fuzz (cargo install cargo-fuzz --locked)" >&2
  cargo install cargo-fuzz --locked >/dev/null
fi

if [ "${FUZZ_ASAN:-0}" = 1 ]; then
  flags=(+nightly fuzz)
  build=(build -O --sanitizer address)
  run=(run -O --sanitizer address)
else
  flags=(fuzz)
  build=(build -O --sanitizer none)
  run=(run -O --sanitizer none)
fi

cargo "${flags[@]}" "${build[@]}"
python3 seed.py >/dev/null

failed=()
for target in $(cargo fuzz list); do
  mkdir -p "corpus/$target"
  if cargo "${flags[@]}" "${run[@]}" "$target" "corpus/$target" -- \
      -max_total_time="$seconds" -seed="${FUZZ_SEED:-1}" -rss_limit_mb=2048 -max_len=262144 -print_final_stats=1 \
      >"corpus/$target.log" 2>&1; then
    execs=$(grep -m1 'stat::number_of_executed_units' "corpus/$target.log" | awk '{print $2}')
    echo "fuzz $target: ok, ${execs:-?} executions in ${seconds}s"
  else
    echo "fuzz $target: FAILED (log below, input in fuzz/artifacts/$target/)" >&2
    grep -E 'panicked|ERROR|SUMMARY|Test unit written' "corpus/$target.log" | head -20 >&2 || true
    failed+=("$target")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "scripts/fuzz.sh: crashes in: ${failed[*]}" >&2
  exit 1
fi
