#!/usr/bin/env bash
# The README's test command (`npm test`): installs what is missing, builds, clears
# leftovers of crashed runs, then runs every suite and prints one closing line
# "N passed, N failed[, N skipped]" that adds up all suites.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
bash scripts/cleanup.sh
status=0
node scripts/run-tests.mjs "$@" || status=$?
bash scripts/cleanup.sh
exit $status
