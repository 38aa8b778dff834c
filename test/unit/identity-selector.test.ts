import assert from 'node:assert/strict';
import { LabelParseError, LabelSet, parseLabel, formatLabel } from '../../identity/labels.js';
import { Selector, SelectorError, type LabelSelectorSpec } from '../../identity/selector.js';
import { cidrLabels, cidrSelector } from '../../identity/cidr-labels.js';
import { CidrError } from '../../identity/cidr.js';

describe('identity: labels', () => {
  const parseCases: { raw: string; want: string; source: string; key: string; value: string }[] = [
    { raw: 'app=web', want: 'k8s:app=web', source: 'k8s', key: 'app', value: 'web' },
    { raw: 'k8s:app=web', want: 'k8s:app=web', source: 'k8s', key: 'app', value: 'web' },
    { raw: 'reserved:host', want: 'reserved:host', source: 'reserved', key: 'host', value: '' },
    { raw: 'any:app=web', want: 'any:app=web', source: 'any', key: 'app', value: 'web' },
    { raw: 'cidr:10.0.0.0/8', want: 'cidr:10.0.0.0/8', source: 'cidr', key: '10.0.0.0/8', value: '' },
    { raw: 'cidr:2001:db8::/32', want: 'cidr:2001:db8::/32', source: 'cidr', key: '2001:db8::/32', value: '' },
    { raw: 'k8s:io.kubernetes.pod.namespace=prod', want: 'k8s:io.kubernetes.pod.namespace=prod', source: 'k8s', key: 'io.kubernetes.pod.namespace', value: 'prod' },
    { raw: ' unspec:team=a ', want: 'unspec:team=a', source: 'unspec', key: 'team', value: 'a' },
  ];
  for (const c of parseCases) {
    it(`parses ${JSON.stringify(c.raw)}`, () => {
      const l = parseLabel(c.raw);
      assert.deepEqual({ source: l.source, key: l.key, value: l.value }, { source: c.source, key: c.key, value: c.value });
      assert.equal(formatLabel(l), c.want);
    });
  }

  for (const bad of ['', '   ', 'k8s:=x', 'k8s:a b=c', 'app=we b']) {
    it(`rejects ${JSON.stringify(bad)} with a reason`, () => {
      assert.throws(() => parseLabel(bad), (e: unknown) => e instanceof LabelParseError && e.message.includes(JSON.stringify(bad)));
    });
  }

  it('label sets are canonical: order and duplicates do not change the key', () => {
    const a = LabelSet.parse('k8s:app=web,k8s:tier=fe');
    const b = LabelSet.parse(['tier=fe', 'app=web', 'k8s:app=web']);
    assert.equal(a.key, b.key);
    assert.equal(a.key, 'k8s:app=web,k8s:tier=fe');
  });

  it('a later label with the same source and key replaces the earlier one', () => {
    assert.equal(LabelSet.parse('app=a,app=b').key, 'k8s:app=b');
  });

  it('keeps labels of one key from different sources apart', () => {
    const ls = LabelSet.parse('k8s:app=web,container:app=other');
    assert.equal(ls.get('app').length, 2);
    assert.equal(ls.get('app', 'k8s')[0]!.value, 'web');
    assert.equal(ls.k8sValue('app'), 'web');
  });
});

describe('identity: selectors', () => {
  const web = LabelSet.parse('k8s:app=web,k8s:tier=fe,k8s:io.kubernetes.pod.namespace=prod');
  const db = LabelSet.parse('k8s:app=db,k8s:io.kubernetes.pod.namespace=prod');
  const containerWeb = LabelSet.parse('container:app=web');
  const host = LabelSet.parse('reserved:host');
  const empty = new LabelSet([]);

  type Case = { name: string; spec: LabelSelectorSpec | null; yes: LabelSet[]; no: LabelSet[] };
  const cases: Case[] = [
    { name: 'empty selector selects everything', spec: {}, yes: [web, db, host, empty], no: [] },
    { name: 'null selector selects everything', spec: null, yes: [web, host], no: [] },
    { name: 'matchLabels without source matches any source', spec: { matchLabels: { app: 'web' } }, yes: [web, containerWeb], no: [db, host] },
    { name: 'any: source matches any source', spec: { matchLabels: { 'any:app': 'web' } }, yes: [web, containerWeb], no: [db] },
    { name: 'k8s: source matches only k8s labels', spec: { matchLabels: { 'k8s:app': 'web' } }, yes: [web], no: [containerWeb, db] },
    { name: 'container: source matches only container labels', spec: { matchLabels: { 'container:app': 'web' } }, yes: [containerWeb], no: [web] },
    { name: 'reserved:host', spec: { matchLabels: { 'reserved:host': '' } }, yes: [host], no: [web, empty] },
    { name: 'matchLabels are ANDed', spec: { matchLabels: { app: 'web', tier: 'fe' } }, yes: [web], no: [db, containerWeb] },
    { name: 'In', spec: { matchExpressions: [{ key: 'app', operator: 'In', values: ['web', 'db'] }] }, yes: [web, db, containerWeb], no: [host] },
    { name: 'NotIn also matches a missing key', spec: { matchExpressions: [{ key: 'app', operator: 'NotIn', values: ['web'] }] }, yes: [db, host, empty], no: [web, containerWeb] },
    { name: 'Exists', spec: { matchExpressions: [{ key: 'k8s:tier', operator: 'Exists' }] }, yes: [web], no: [db, containerWeb, host] },
    { name: 'DoesNotExist', spec: { matchExpressions: [{ key: 'tier', operator: 'DoesNotExist' }] }, yes: [db, host, empty], no: [web] },
    {
      name: 'matchLabels and matchExpressions are ANDed',
      spec: { matchLabels: { 'k8s:io.kubernetes.pod.namespace': 'prod' }, matchExpressions: [{ key: 'app', operator: 'NotIn', values: ['web'] }] },
      yes: [db],
      no: [web, host],
    },
    { name: 'value comparison is exact', spec: { matchLabels: { app: 'We' } }, yes: [], no: [web] },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const sel = Selector.fromSpec(c.spec, 'sel');
      for (const ls of c.yes) assert.equal(sel.matches(ls), true, `should select ${ls.key}`);
      for (const ls of c.no) assert.equal(sel.matches(ls), false, `should not select ${ls.key}`);
    });
  }

  it('equal selectors written differently share one key', () => {
    const a = Selector.fromSpec({ matchLabels: { app: 'web' }, matchExpressions: [{ key: 'tier', operator: 'In', values: ['b', 'a', 'a'] }] }, 'a');
    const b = Selector.fromSpec({ matchExpressions: [{ key: 'tier', operator: 'In', values: ['a', 'b'] }, { key: 'app', operator: 'In', values: ['web'] }] }, 'b');
    assert.equal(a.key, b.key);
    assert.equal(Selector.fromSpec({}, 'x').key, '{}');
    assert.equal(Selector.all.isWildcard, true);
  });

  it('round-trips through toSpec', () => {
    const spec: LabelSelectorSpec = { matchLabels: { 'k8s:app': 'web' }, matchExpressions: [{ key: 'any:tier', operator: 'Exists' }] };
    const sel = Selector.fromSpec(spec, 's');
    assert.equal(Selector.fromSpec(sel.toSpec(), 's').key, sel.key);
  });

  const badCases: { spec: unknown; field: string }[] = [
    { spec: [], field: 'sel' },
    { spec: { matchLabels: ['a'] }, field: 'sel.matchLabels' },
    { spec: { matchLabels: { app: 1 } }, field: 'sel.matchLabels.app' },
    { spec: { matchExpressions: {} }, field: 'sel.matchExpressions' },
    { spec: { matchExpressions: [{ key: 'a', operator: 'Equals', values: ['x'] }] }, field: 'sel.matchExpressions[0].operator' },
    { spec: { matchExpressions: [{ key: 'a', operator: 'In', values: [] }] }, field: 'sel.matchExpressions[0].values' },
    { spec: { matchExpressions: [{ key: 'a', operator: 'Exists', values: ['x'] }] }, field: 'sel.matchExpressions[0].values' },
    { spec: { matchExpressions: [{ key: '', operator: 'Exists' }] }, field: 'sel.matchExpressions[0].key' },
  ];
  for (const c of badCases) {
    it(`rejects ${JSON.stringify(c.spec)} naming ${c.field}`, () => {
      assert.throws(() => Selector.fromSpec(c.spec as LabelSelectorSpec, 'sel'), (e: unknown) => e instanceof SelectorError && e.field === c.field);
    });
  }
});

describe('identity: CIDR selectors match by prefix containment', () => {
  const id8 = cidrLabels('10.0.0.0/8');
  const id16 = cidrLabels('10.1.0.0/16');
  const id32 = cidrLabels('10.96.0.10/32');
  const other = cidrLabels('192.168.1.0/24');
  const v6 = cidrLabels('2001:db8::/48');
  const world = LabelSet.parse('reserved:world');
  const pod = LabelSet.parse('k8s:app=web');

  const cases: { name: string; sel: Selector; yes: LabelSet[]; no: LabelSet[] }[] = [
    { name: 'cidr:10.0.0.0/8 selects contained prefixes', sel: cidrSelector('10.0.0.0/8'), yes: [id8, id16, id32], no: [other, v6, world, pod] },
    { name: 'a narrower selector does not select a wider identity', sel: cidrSelector('10.1.0.0/16'), yes: [id16], no: [id8, id32] },
    { name: 'except removes contained identities', sel: cidrSelector('10.0.0.0/8', ['10.96.0.0/12']), yes: [id8, id16], no: [id32, other] },
    { name: '0.0.0.0/0 is the world: world and every IPv4 CIDR identity', sel: cidrSelector('0.0.0.0/0'), yes: [world, id8, other], no: [pod, v6] },
    { name: '::/0 is the world: world and every IPv6 CIDR identity', sel: cidrSelector('::/0'), yes: [world, v6], no: [pod, id8] },
    { name: '/0 with except', sel: cidrSelector('0.0.0.0/0', ['10.0.0.0/8']), yes: [world, other], no: [id8, id16] },
    { name: 'IPv6 containment', sel: cidrSelector('2001:db8::/32'), yes: [v6], no: [id8] },
    { name: 'Cilium dash spelling of IPv6', sel: Selector.fromSpec({ matchLabels: { 'cidr:2001-db8--/32': '' } }, 's'), yes: [v6], no: [id8] },
    { name: 'host bits in the selector are masked', sel: cidrSelector('10.1.2.3/16'), yes: [id16], no: [id8] },
    { name: 'matchLabels form written in policy YAML', sel: Selector.fromSpec({ matchLabels: { 'cidr:10.0.0.0/8': '' } }, 's'), yes: [id16], no: [other] },
  ];
  for (const c of cases) {
    it(c.name, () => {
      for (const ls of c.yes) assert.equal(c.sel.matches(ls), true, `should select ${ls.key}`);
      for (const ls of c.no) assert.equal(c.sel.matches(ls), false, `should not select ${ls.key}`);
    });
  }

  it('CIDR identity labels: own prefix plus reserved:world (current Cilium), /0 is world only', () => {
    assert.equal(cidrLabels('10.1.2.3/16').key, 'cidr:10.1.0.0/16,reserved:world');
    assert.equal(cidrLabels('2001:DB8:0:0::1/128').key, 'cidr:2001:db8::1/128,reserved:world');
    assert.equal(cidrLabels('0.0.0.0/0').key, 'reserved:world');
  });

  it('CIDR requirements written differently share one selector key', () => {
    const a = Selector.fromSpec({ matchLabels: { 'cidr:10.1.2.3/16': '' } }, 'a');
    const b = Selector.fromSpec({ matchLabels: { 'cidr:10.1.0.0/16': '' } }, 'b');
    assert.equal(a.key, b.key);
    assert.equal(a.key, cidrSelector('10.1.0.0/16').key);
    assert.equal(Selector.fromSpec({ matchLabels: { 'cidr:2001-db8--/32': '' } }, 'c').key, cidrSelector('2001:db8::/32').key);
  });

  it('rejects an except outside the prefix, naming it', () => {
    assert.throws(() => cidrSelector('10.0.0.0/8', ['11.0.0.0/16']), (e: unknown) => e instanceof CidrError && e.message.includes('11.0.0.0/16'));
    assert.throws(() => cidrSelector('10.0.0.0/33'), CidrError);
  });
});
