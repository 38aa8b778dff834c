#!/usr/bin/env bash
# The README's demo command (`npm run demo`): installs what is missing, builds, then runs
# the demo scenario with the real kernel datapath and the real Envoy. Pass --once to run
# the scenario and exit (status 0 only if every verdict matched).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
exec node dist/agent/demo/main.js "$@"
