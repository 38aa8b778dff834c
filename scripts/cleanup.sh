#!/usr/bin/env bash
# Removes what a crashed l7mesh run may have left: processes, network namespaces,
# cgroups, BPF pins and iptables rules. Safe to run at any time; tests run it first.
set -u
[ "$(id -u)" = 0 ] || exit 0
# Processes that tests and the demo started (they record their pids here).
for f in /run/l7mesh/pids/*.pid /tmp/l7mesh-pids/*.pid; do
  [ -e "$f" ] || continue
  pid=$(cat "$f" 2>/dev/null); [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
  rm -f "$f"
done
pkill -9 -f -- '--base-id-path /tmp/l7mesh' 2>/dev/null
pkill -9 -f -- 'l7mesh-test-' 2>/dev/null
# Scratch directories of the Kafka suite and benchmark (their processes are in the pid files;
# the names avoid the broad patterns above so parallel suites never kill each other's broker).
rm -rf /tmp/l7m-kafka-* /tmp/l7m-ct-kafka-* 2>/dev/null
# Scratch directories and browsers of the observe tests.
pkill -9 -f -- '--user-data-dir=/tmp/l7m-chromium-' 2>/dev/null
rm -rf /tmp/l7m-obs-* /tmp/l7m-flood-* /tmp/l7m-chromium-* 2>/dev/null
# Network namespaces and host-side veths.
for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^l7m' ); do
  for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
  ip netns del "$ns" 2>/dev/null
done
for l in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1 | grep -E '^l7m'); do
  ip link del "$l" 2>/dev/null
done
# cgroups: deepest first; a cgroup with live processes is emptied first.
# l7mesh's cgroups sit below every cgroup2 mount (pure v2, hybrid .../unified, or ours).
cg2roots=$(awk '$3 == "cgroup2" {print $2 "/l7mesh"}' /proc/mounts 2>/dev/null)
for root in /sys/fs/cgroup/l7mesh /run/l7mesh/cgroup2/l7mesh $cg2roots; do
  [ -d "$root" ] || continue
  find "$root" -depth -type d | while read -r d; do
    if [ -f "$d/cgroup.procs" ]; then
      for p in $(cat "$d/cgroup.procs" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
    fi
    rmdir "$d" 2>/dev/null
  done
done
rm -rf /sys/fs/bpf/l7mesh 2>/dev/null
# etcd data and in-process node state of the cluster tests (their etcd pids are in the pid files).
rm -rf /tmp/l7m-etcd-* /tmp/l7mre-state-* 2>/dev/null
# Temporary CAs and key files of the TLS tests.
rm -rf /tmp/l7m-tls-* /tmp/l7m-ca-* /tmp/l7m-secret-* /tmp/l7m-tlsctx-* 2>/dev/null
# iptables rules tagged by benchmarks and tests.
if command -v iptables-save >/dev/null; then
  iptables-save -t nat 2>/dev/null | grep -- '--comment l7mesh' | sed 's/^-A/-D/' | while read -r rule; do
    eval "iptables -t nat $rule" 2>/dev/null
  done
fi
# Cluster mode's TPROXY rules for L7 ingress from other nodes (agent/main.ts, cluster/ingress-tproxy.ts):
# normally inside node namespaces (deleted above); an agent run in this namespace leaves them here.
if command -v iptables-save >/dev/null && iptables-save -t mangle 2>/dev/null | grep -q 'L7M-TPROXY'; then
  iptables-save -t mangle 2>/dev/null | grep -- '-j L7M-TPROXY' | grep '^-A PREROUTING' | sed 's/^-A/-D/' | while read -r rule; do
    eval "iptables -t mangle $rule" 2>/dev/null
  done
  iptables -t mangle -F L7M-TPROXY 2>/dev/null; iptables -t mangle -X L7M-TPROXY 2>/dev/null
  ip rule del fwmark 0x4000000/0x4000000 lookup 117 2>/dev/null; ip route flush table 117 2>/dev/null
fi
# State, sockets and Envoy work directories of the demo, agent tests and the agent benchmark.
rm -rf /run/l7mesh/demo-state /run/l7mesh/e2erst-state /run/l7mesh/e2ect-state /run/l7mesh/bench-state \
  /run/l7mesh/demo /run/l7mesh/e2erst /run/l7mesh/e2ect /run/l7mesh/bench 2>/dev/null
rm -f /run/l7mesh/demo.sock /run/l7mesh/e2erst.sock /run/l7mesh/e2ect.sock /run/l7mesh/demo-api-token 2>/dev/null
# The TLS/authentication e2e agents.
rm -rf /run/l7mesh/e2etls-state /run/l7mesh/e2etls /run/l7mesh/e2eauth-state /run/l7mesh/e2eauth \
  /run/l7mesh/e2etls.sock /run/l7mesh/e2eauth.sock 2>/dev/null
# The cross-node mTLS test (test/cluster/mtls.test.ts: nodes l7mtrb, l7mtrc) and its probe files.
rm -rf /run/l7mesh/l7mc-l7mtr*-state /run/l7mesh/l7mtr* /run/l7mesh/l7mc-l7mtr*.sock /tmp/l7mtr-* 2>/dev/null
# The TLS-secret-store / TLS-context e2e agents (node names l7mtc*); their pins go with /sys/fs/bpf/l7mesh above.
rm -rf /run/l7mesh/l7mtc*-state /run/l7mesh/l7mtc[0-9]* /run/l7mesh/l7mtc*.sock /run/l7mesh/l7mtc*-agent.log 2>/dev/null
exit 0
