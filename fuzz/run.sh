#!/usr/bin/env bash
# Run every atheris fuzz target (or the ones named: fuzz/run.sh axdr apdu) for
# ${FUZZ_SECONDS:-60} seconds each. New inputs go to fuzz/work/<target>/ and findings (crash-,
# timeout-, oom- files) to fuzz/crashes/<target>/; both are git-ignored, while the seeds in
# fuzz/corpus/<target>/ (written by fuzz/make_corpus.py) are only read.
# Exits non-zero if any target found a crash, a hang or a memory blow-up.
set -uo pipefail
cd "$(dirname "$0")/.."

PYTHON=.venv/bin/python
SECONDS_EACH=${FUZZ_SECONDS:-60}
TARGETS=("$@")
if [ ${#TARGETS[@]} -eq 0 ]; then
  TARGETS=(axdr apdu wrapper datetime security bus echonet pana skstack)
fi

failed=()
for target in "${TARGETS[@]}"; do
  script=fuzz/fuzz_${target}.py
  if [ ! -f "$script" ]; then
    echo "no fuzz target $script" >&2
    exit 2
  fi
  work=fuzz/work/$target
  crashes=fuzz/crashes/$target
  log=fuzz/work/$target.log
  mkdir -p "$work" "$crashes"
  echo "== $target: ${SECONDS_EACH}s"
  # -timeout: one input taking over 10 s is a hang; -rss_limit_mb: a memory blow-up;
  # -use_value_profile: compared values guide the mutations too.
  "$PYTHON" "$script" "$work" "fuzz/corpus/$target" \
    -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 -use_value_profile=1 \
    -artifact_prefix="$crashes/" -print_final_stats=1 >"$log" 2>&1
  status=$?
  execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | grep -o '[0-9]*$' || true)
  cov=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$log" | tail -n 1 || true)
  echo "   exit $status, ${execs:-?} executions, ${cov:-no coverage line}, log $log"
  if [ "$status" -ne 0 ]; then
    failed+=("$target")
    grep -E '^(=== Uncaught|Traceback|  File|[A-Za-z.]*(Error|Exception)|==[0-9]+== ERROR)' "$log" \
      | head -n 20 | sed 's/^/   | /'
    ls "$crashes" | sed "s|^|   finding: $crashes/|"
  fi
done

if [ ${#failed[@]} -ne 0 ]; then
  echo "fuzzing found problems in: ${failed[*]}" >&2
  exit 1
fi
echo "fuzzing found nothing in: ${TARGETS[*]}"
