#!/usr/bin/env bash
# BPF datapath prerequisites beyond the base packages: a mounted bpffs for pins and a
# kernel with BTF (CO-RE). clang, libbpf-dev and bpftool come from scripts/setup.sh.
# Idempotent; prints what it cannot fix instead of failing the whole setup.
set -u
log() { printf '[setup:bpf] %s\n' "$*"; }
if [ "$(id -u)" = 0 ]; then
  if ! awk '$2 == "/sys/fs/bpf" && $3 == "bpf" {found=1} END {exit !found}' /proc/mounts; then
    mount -t bpf bpf /sys/fs/bpf && log "mounted bpffs at /sys/fs/bpf"
  fi
else
  log "not root: bpffs mount and kernel tests need root"
fi
[ -r /sys/kernel/btf/vmlinux ] || log "kernel BTF missing (/sys/kernel/btf/vmlinux): the BPF objects cannot be built or loaded"
command -v python3 >/dev/null || log "python3 missing: the kernel tests use it for their socket clients"
exit 0
