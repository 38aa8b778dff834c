#!/usr/bin/env bash
# Policy resolution benchmark (never part of npm test). Builds the TypeScript, then runs
# with --expose-gc so heap figures are measured after a collection.
set -euo pipefail
cd "$(dirname "$0")/../.."
npx tsc -p tsconfig.json
node --expose-gc dist/bench/policy/run.js
