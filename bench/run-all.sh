#!/usr/bin/env bash
# Runs every benchmark one after another (never in parallel: they share 2 cores), then
# rebuilds bench/RESULTS.md and the README table. Needs root and a built tree
# (`npm test` or `bash scripts/build.sh` first). Pick some: bench/run-all.sh xds kafka
# Takes about 20 minutes for all of them on a quiet 2-core machine.
set -uo pipefail
cd "$(dirname "$0")/.."
declare -A CMD=(
  [policy]="node --expose-gc dist/bench/policy/run.js"
  [http]="node dist/bench/http/run.js"
  [xds]="node dist/bench/xds/run.js"
  [datapath]="node dist/bench/datapath/run.js"
  [kafka]="node dist/bench/kafka/produce.js --seconds 6 --rounds 5"
  [agent]="node --expose-gc dist/bench/agent/run.js"
  [lb]="node dist/bench/lb/run.js"
  [cluster]="node dist/bench/cluster/run.js"
)
ORDER=(policy http xds datapath kafka agent lb cluster)
[ $# -gt 0 ] && ORDER=("$@")
failed=()
for b in "${ORDER[@]}"; do
  [ -n "${CMD[$b]:-}" ] || { echo "unknown benchmark: $b (one of ${!CMD[*]})" >&2; exit 2; }
  echo "=== bench $b: ${CMD[$b]} ($(date -u +%H:%M:%S), load $(cut -d' ' -f1-3 /proc/loadavg))"
  bash scripts/cleanup.sh
  start=$SECONDS
  ${CMD[$b]} || failed+=("$b")
  echo "=== bench $b took $((SECONDS - start)) s"
done
bash scripts/cleanup.sh
node bench/summary.mjs
[ ${#failed[@]} -eq 0 ] || { echo "failed: ${failed[*]}" >&2; exit 1; }
