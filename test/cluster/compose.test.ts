// compose.yaml describes the topology the cluster tests build: etcd, two agents in
// cluster mode on a fabric network, a Kafka broker and demo workloads. Checked here for
// structure and consistency; `docker compose config` runs too where it is installed.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { parseDaemonArgs } from '../../agent/main.js';
import { CiliumPolicyEngine } from '../../agent/policy-engine-impl.js';
import { repoRoot } from '../support/paths.js';
import { nodeSpec } from './support/nodes.js';

interface Service {
  image?: string;
  build?: { context: string; dockerfile: string };
  command?: string[];
  depends_on?: Record<string, { condition: string }>;
  networks?: Record<string, { ipv4_address?: string }>;
  network_mode?: string;
  volumes?: string[];
  environment?: Record<string, string>;
}

describe('compose.yaml', () => {
  const file = `${repoRoot}compose.yaml`;
  const doc = parse(readFileSync(file, 'utf8'), { merge: true }) as { services: Record<string, Service>; networks: Record<string, { ipam: { config: { subnet: string }[] } }>; volumes: Record<string, unknown> };

  it('has etcd, two cluster-mode agents, a Kafka broker and demo workloads', () => {
    const names = Object.keys(doc.services).sort();
    assert.deepEqual(names, ['agent-c1', 'agent-c2', 'etcd', 'kafka', 'workloads-c1', 'workloads-c2']);
    assert.match(doc.services.etcd!.image!, /etcd:v3\.4/);
    assert.match(doc.services.kafka!.image!, /kafka/);
    assert.equal(doc.services.kafka!.environment!.KAFKA_PROCESS_ROLES, 'broker,controller');
  });

  it("the agents' flags parse, match the test topology and point at the etcd service", () => {
    const etcdIp = doc.services.etcd!.networks!.fabric!.ipv4_address!;
    assert.equal(doc.networks.fabric!.ipam.config[0]!.subnet, '10.220.0.0/24');
    for (const [i, name] of ['agent-c1', 'agent-c2'].entries()) {
      const s = doc.services[name]!;
      assert.equal(s.command![0], 'l7mesh-agent');
      const o = parseDaemonArgs([...s.command!.slice(1), '--datapath', 'fake', '--proxy', 'fake']);
      assert.ok(o !== 'help' && o.cluster, `${name}: cluster mode`);
      assert.deepEqual(o.cluster.endpoints, [`http://${etcdIp}:2379`]);
      const ip = s.networks!.fabric!.ipv4_address!;
      assert.equal(o.cluster.nodeIp, ip, `${name}: --node-ip is its fabric address`);
      const t = nodeSpec(`c${i + 1}`, i);
      assert.equal(ip, t.nodeIp, `${name}: same address as the namespace test topology`);
      assert.equal(o.podCidr, t.podCidr, `${name}: same pod CIDR as the namespace test topology`);
      assert.equal(s.depends_on!.etcd!.condition, 'service_healthy');
      assert.ok(s.volumes!.includes('/sys/fs/bpf:/sys/fs/bpf'));
    }
  });

  it('refers only to services, volumes and files that exist; the demo policy is valid', () => {
    for (const [name, s] of Object.entries(doc.services)) {
      for (const dep of Object.keys(s.depends_on ?? {})) assert.ok(doc.services[dep], `${name} depends on unknown ${dep}`);
      const m = /^service:(.+)$/.exec(s.network_mode ?? '');
      if (m) assert.ok(doc.services[m[1]!], `${name}: network_mode names unknown ${m[1]}`);
      for (const v of s.volumes ?? []) {
        const src = v.split(':')[0]!;
        if (!src.startsWith('/')) assert.ok(src in doc.volumes, `${name}: volume ${src} is not declared`);
      }
      for (const n of Object.keys(s.networks ?? {})) assert.ok(doc.networks[n], `${name}: network ${n} is not declared`);
      if (s.build) assert.ok(existsSync(`${repoRoot}${s.build.dockerfile}`), `${name}: ${s.build.dockerfile} is missing`);
    }
    const docs = new CiliumPolicyEngine({ allowLocalhost: 'always' }).parse(readFileSync(`${repoRoot}cluster/demo-policy.yaml`, 'utf8'));
    assert.equal(docs.length, 1);
  });

  it('is accepted by `docker compose config`', function () {
    const probe = spawnSync('docker', ['compose', 'version'], { encoding: 'utf8', timeout: 10_000 });
    if (probe.status !== 0) {
      console.log('      skipped: `docker compose` is not installed here (scripts/setup.d/40-docker-compose.sh builds it; the structure is checked by the tests above)');
      this.skip();
    }
    const r = spawnSync('docker', ['compose', '-f', file, 'config', '-q'], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 0, r.stderr);
  });
});
