#!/usr/bin/env bash
# Compiles everything: TypeScript, then (when their toolchains are present) the BPF
# objects and the libbpf addon. `policy trace` needs only the TypeScript part.
set -euo pipefail
cd "$(dirname "$0")/.."
# A clean output tree: a test deleted or renamed in source must not linger as a stale
# compiled file that the runner would still pick up.
rm -rf dist
npx tsc -p tsconfig.json
if [ -f bpf/Makefile ]; then
  if command -v clang >/dev/null && command -v bpftool >/dev/null; then
    make -s -C bpf
  else
    echo "[build] clang/bpftool missing: BPF objects not built (run scripts/setup.sh)" >&2
  fi
fi
if [ -f addon/binding.gyp ]; then
  if [ -f /usr/include/bpf/libbpf.h ]; then
    # node-gyp must use this machine's Node headers, never download them.
    (cd addon && npm_config_nodedir=/usr ../node_modules/.bin/node-gyp rebuild --loglevel=error >/dev/null)
  else
    echo "[build] libbpf-dev missing: addon not built (run scripts/setup.sh)" >&2
  fi
fi
