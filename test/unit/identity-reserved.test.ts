import assert from 'node:assert/strict';
import { LabelSet } from '../../identity/labels.js';
import {
  ENTITIES,
  EntityError,
  RESERVED_IDENTITY_LABELS,
  ReservedIdentity,
  entitySelectors,
  reservedIdentityFor,
  reservedIdentityName,
} from '../../identity/reserved.js';
import { cidrLabels } from '../../identity/cidr-labels.js';
import { canonicalPrefix, CidrError, parseIp, parsePrefix, prefixContains } from '../../identity/cidr.js';

describe('identity: reserved identities', () => {
  it('has Cilium numbering', () => {
    assert.deepEqual(ReservedIdentity, { unknown: 0, host: 1, world: 2, unmanaged: 3, health: 4, init: 5, remoteNode: 6, kubeApiserver: 7, ingress: 8 });
  });

  const cases: { labels: string; want: number | undefined }[] = [
    { labels: 'reserved:host', want: 1 },
    { labels: 'reserved:world', want: 2 },
    { labels: 'reserved:unmanaged', want: 3 },
    { labels: 'reserved:health', want: 4 },
    { labels: 'reserved:init', want: 5 },
    { labels: 'reserved:remote-node', want: 6 },
    { labels: 'reserved:kube-apiserver,reserved:remote-node', want: 7 },
    { labels: 'reserved:kube-apiserver', want: 7 },
    { labels: 'reserved:ingress', want: 8 },
    // The host keeps its identity whatever else it carries (node labels, kube-apiserver).
    { labels: 'reserved:host,reserved:kube-apiserver', want: 1 },
    { labels: 'reserved:host,k8s:node-role=worker', want: 1 },
    { labels: 'k8s:app=web', want: undefined },
    { labels: 'reserved:world,k8s:app=web', want: undefined },
    { labels: 'reserved:none', want: undefined },
    { labels: 'k8s:host', want: undefined },
  ];
  for (const c of cases) {
    it(`${c.labels} → ${String(c.want)}`, () => {
      assert.equal(reservedIdentityFor(LabelSet.parse(c.labels)), c.want);
    });
  }

  it('CIDR label sets are not reserved', () => {
    assert.equal(reservedIdentityFor(cidrLabels('10.0.0.0/8')), undefined);
    assert.equal(reservedIdentityFor(cidrLabels('0.0.0.0/0')), ReservedIdentity.world);
  });

  it('every reserved identity resolves from its own labels and has a name', () => {
    for (const [id, ls] of RESERVED_IDENTITY_LABELS) {
      assert.equal(reservedIdentityFor(ls), id);
      assert.ok(reservedIdentityName(id));
    }
    assert.equal(reservedIdentityName(7), 'kube-apiserver');
    assert.equal(reservedIdentityName(256), undefined);
  });
});

describe('identity: entities', () => {
  const ids = new Map<string, LabelSet>([
    ['host', LabelSet.parse('reserved:host')],
    ['world', LabelSet.parse('reserved:world')],
    ['unmanaged', LabelSet.parse('reserved:unmanaged')],
    ['health', LabelSet.parse('reserved:health')],
    ['init', LabelSet.parse('reserved:init')],
    ['remote-node', LabelSet.parse('reserved:remote-node')],
    ['kube-apiserver', RESERVED_IDENTITY_LABELS.get(7)!],
    ['ingress', LabelSet.parse('reserved:ingress')],
    ['pod', LabelSet.parse('k8s:app=web,k8s:io.kubernetes.pod.namespace=default,k8s:io.cilium.k8s.policy.cluster=default')],
    ['other-cluster-pod', LabelSet.parse('k8s:app=web,k8s:io.cilium.k8s.policy.cluster=east')],
    ['cidr', cidrLabels('203.0.113.0/24')],
  ]);
  const cases: { entity: string; selects: string[] }[] = [
    { entity: 'all', selects: [...ids.keys()] },
    { entity: 'world', selects: ['world', 'cidr'] },
    { entity: 'host', selects: ['host'] },
    { entity: 'remote-node', selects: ['remote-node', 'kube-apiserver'] },
    { entity: 'kube-apiserver', selects: ['kube-apiserver'] },
    { entity: 'health', selects: ['health'] },
    { entity: 'init', selects: ['init'] },
    { entity: 'ingress', selects: ['ingress'] },
    { entity: 'unmanaged', selects: ['unmanaged'] },
    { entity: 'none', selects: [] },
    { entity: 'cluster', selects: ['host', 'unmanaged', 'health', 'init', 'remote-node', 'kube-apiserver', 'ingress', 'pod'] },
  ];
  for (const c of cases) {
    it(`${c.entity} selects ${c.selects.join(', ') || 'nothing'}`, () => {
      const sels = entitySelectors(c.entity);
      const got = [...ids].filter(([, ls]) => sels.some((s) => s.matches(ls))).map(([n]) => n);
      assert.deepEqual(got.sort(), [...c.selects].sort());
    });
  }

  it('cluster takes the cluster name', () => {
    const sels = entitySelectors('cluster', 'east');
    assert.equal(sels.some((s) => s.matches(ids.get('other-cluster-pod')!)), true);
    assert.equal(sels.some((s) => s.matches(ids.get('pod')!)), false);
  });

  it('covers exactly the CRD enum and rejects others by name', () => {
    for (const e of ENTITIES) assert.ok(entitySelectors(e).length > 0);
    for (const bad of ['world-ipv4', 'World', '', 'cluster ']) {
      assert.throws(() => entitySelectors(bad), (err: unknown) => err instanceof EntityError && err.message.includes(`"${bad}"`));
    }
  });
});

describe('identity: IP prefixes', () => {
  const ok: [string, string][] = [
    ['10.1.2.3/8', '10.0.0.0/8'],
    ['10.1.2.3', '10.1.2.3/32'],
    ['0.0.0.0/0', '0.0.0.0/0'],
    ['2001:DB8::1/32', '2001:db8::/32'],
    ['::/0', '::/0'],
    ['::1', '::1/128'],
    ['2001:db8:0:0:1:0:0:1/128', '2001:db8::1:0:0:1/128'],
    ['::ffff:10.1.2.3/128', '::ffff:a01:203/128'],
    ['fe80-0-0-0-0-0-0-1/64', 'fe80::/64'],
    ['1:0:0:2:0:0:0:3/128', '1:0:0:2::3/128'],
  ];
  for (const [raw, want] of ok) {
    it(`${raw} → ${want}`, () => assert.equal(canonicalPrefix(raw), want));
  }
  for (const bad of ['', '10.0.0/8', '10.0.0.256/32', '10.0.0.0/33', '010.0.0.0/8', '::1/129', '1::2::3', 'a.b.c.d', '10.0.0.0/x', 'fe80::1%eth0']) {
    it(`rejects ${JSON.stringify(bad)}`, () => assert.throws(() => parsePrefix(bad), CidrError));
  }
  it('containment', () => {
    assert.equal(prefixContains(parsePrefix('10.0.0.0/8'), parsePrefix('10.2.0.0/16')), true);
    assert.equal(prefixContains(parsePrefix('10.2.0.0/16'), parsePrefix('10.0.0.0/8')), false);
    assert.equal(prefixContains(parsePrefix('0.0.0.0/0'), parsePrefix('::/0')), false);
    assert.equal(parseIp('1.2.3.4')!.family, 4);
    assert.equal(parseIp('nope'), undefined);
  });
});
