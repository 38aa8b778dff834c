#!/usr/bin/env bash
# bench/http: 100-rule RBAC through Envoy vs Envoy with no filters (needs root for the
# iptables REDIRECT). Writes bench/results/http_rbac_100_rules_*.json and
# bench/sections/http.md. Env: BENCH_ROUNDS, BENCH_DURATION_MS, BENCH_CONNECTIONS.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -f dist/bench/http/run.js ] || bash scripts/build.sh
exec node dist/bench/http/run.js
