# Sourced by the whole-process benchmark scripts (verify.sh, report.sh): `measure NAME
# CMD...` runs CMD $runs times, stdout to "$tmp/out", and prints the best user+sys CPU
# (perf stat, or /usr/bin/time when perf is missing), the best wall time and the lines
# written. Needs $runs and $tmp set.
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

