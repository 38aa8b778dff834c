import assert from 'node:assert/strict';
import { LabelSet } from '../../identity/labels.js';
import { Selector } from '../../identity/selector.js';
import { SelectorCache, type SelectionChanges } from '../../identity/selector-cache.js';
import { IdentityAllocator, type Identity } from '../../identity/allocator.js';
import { cidrLabels, cidrSelector } from '../../identity/cidr-labels.js';
import { entitySelectors } from '../../identity/reserved.js';

const ident = (id: number, labels: string): Identity => ({ id, labels: LabelSet.parse(labels), reserved: id < 256 });
const sel = (matchLabels: Record<string, string>) => Selector.fromSpec({ matchLabels }, 'test');
const plain = (m: SelectionChanges) => Object.fromEntries([...m].map(([k, v]) => [k, v]));

describe('identity: selector cache', () => {
  const web = ident(256, 'k8s:app=web,k8s:io.kubernetes.pod.namespace=prod');
  const db = ident(257, 'k8s:app=db,k8s:io.kubernetes.pod.namespace=prod');
  const web2 = ident(258, 'k8s:app=web,k8s:io.kubernetes.pod.namespace=dev');
  const host = ident(1, 'reserved:host');
  const world = ident(2, 'reserved:world');

  it('computes selections when a selector is added, shares entries between users', () => {
    const c = new SelectorCache([web, db, host]);
    const s = sel({ app: 'web' });
    assert.deepEqual([...c.addSelector(s, 'policy-a')], [256]);
    assert.deepEqual([...c.addSelector(sel({ 'k8s:app': 'web' }), 'policy-b')], [256]);
    assert.deepEqual([...c.addSelector(Selector.all, 'policy-b')].sort(), [1, 256, 257]);
    assert.equal(c.dump().length, 3);
    assert.deepEqual(c.dump().find((d) => d.selector === s.key), { selector: s.key, identities: [256], users: ['policy-a'] });
  });

  it('reports only selectors whose selections changed, with exact deltas', () => {
    const c = new SelectorCache([web, db]);
    const sWeb = sel({ app: 'web' });
    const sProd = sel({ 'k8s:io.kubernetes.pod.namespace': 'prod' });
    const sHost = entitySelectors('host')[0]!;
    c.addSelector(sWeb, 'p1');
    c.addSelector(sProd, 'p2');
    c.addSelector(sHost, 'p3');
    const seen: SelectionChanges[] = [];
    c.subscribe((ch) => seen.push(ch));

    const ch1 = c.updateIdentities([web2], []);
    assert.deepEqual(plain(ch1), { [sWeb.key]: { added: [258], removed: [] } });

    const ch2 = c.updateIdentities([], [web]);
    assert.deepEqual(plain(ch2), { [sWeb.key]: { added: [], removed: [256] }, [sProd.key]: { added: [], removed: [256] } });

    const ch3 = c.updateIdentities([world], []);
    assert.equal(ch3.size, 0, 'an identity no selector wants changes nothing');
    assert.equal(seen.length, 2, 'subscribers hear only non-empty changes');

    assert.deepEqual([...c.selections(sWeb)], [258]);
    assert.deepEqual([...c.selections(sProd)], [257]);
    assert.deepEqual([...c.selections(sHost)], []);
  });

  it('handed-out selections are snapshots (copy on write)', () => {
    const c = new SelectorCache([web]);
    const s = sel({ app: 'web' });
    const before = c.addSelector(s, 'p');
    c.updateIdentities([web2], []);
    assert.deepEqual([...before], [256]);
    assert.deepEqual([...c.selections(s)].sort(), [256, 258]);
  });

  it('re-labelling an identity (removed and added in one update) moves it between selectors', () => {
    const c = new SelectorCache([web]);
    const sWeb = sel({ app: 'web' });
    const sApi = sel({ app: 'api' });
    c.addSelector(sWeb, 'p');
    c.addSelector(sApi, 'p');
    const relabelled = ident(256, 'k8s:app=api');
    const ch = c.updateIdentities([relabelled], [web]);
    assert.deepEqual(plain(ch), { [sWeb.key]: { added: [], removed: [256] }, [sApi.key]: { added: [256], removed: [] } });
    const same = c.updateIdentities([relabelled], [relabelled]);
    assert.equal(same.size, 0, 'remove and re-add of the same labels nets to nothing');
  });

  it('removes a selector with its last user', () => {
    const c = new SelectorCache([web]);
    const s = sel({ app: 'web' });
    c.addSelector(s, 'a');
    c.addSelector(s, 'b');
    assert.equal(c.removeSelector(s, 'a'), true);
    assert.equal(c.has(s), true);
    assert.equal(c.removeSelector(s, 'a'), false);
    assert.equal(c.removeSelector(s, 'b'), true);
    assert.equal(c.has(s), false);
    assert.deepEqual([...c.selections(s)], []);
    assert.equal(c.updateIdentities([web2], []).size, 0);
  });

  it('CIDR selectors follow CIDR identities by containment, honouring except', () => {
    const c = new SelectorCache([world]);
    const s8 = cidrSelector('10.0.0.0/8', ['10.96.0.0/12']);
    const sWorld = entitySelectors('world')[0]!;
    c.addSelector(s8, 'p');
    c.addSelector(sWorld, 'p');
    const id16 = { id: (1 << 24) + 1, labels: cidrLabels('10.1.0.0/16'), reserved: false };
    const idSvc = { id: (1 << 24) + 2, labels: cidrLabels('10.96.0.1/32'), reserved: false };
    const ch = c.updateIdentities([id16, idSvc], []);
    assert.deepEqual(plain(ch), {
      [s8.key]: { added: [id16.id], removed: [] },
      [sWorld.key]: { added: [id16.id, idSvc.id], removed: [] },
    });
  });

  it('attaches to an allocator and follows it', async () => {
    const a = await IdentityAllocator.open({});
    const c = new SelectorCache();
    const detach = c.attach(a);
    const s = sel({ app: 'web' });
    assert.deepEqual([...c.addSelector(entitySelectors('host')[0]!, 'p')], [1]);
    c.addSelector(s, 'p');
    const changes: SelectionChanges[] = [];
    c.subscribe((ch) => changes.push(ch));
    const w = a.allocate(LabelSet.parse('app=web'));
    assert.deepEqual([...c.selections(s)], [w.id]);
    a.release(w.id);
    assert.deepEqual([...c.selections(s)], []);
    assert.deepEqual(
      changes.map(plain),
      [{ [s.key]: { added: [w.id], removed: [] } }, { [s.key]: { added: [], removed: [w.id] } }],
    );
    detach();
    a.allocate(LabelSet.parse('app=web'));
    assert.deepEqual([...c.selections(s)], []);
  });

  it('matches a brute-force recomputation after random updates', () => {
    // Deterministic pseudo-random walk (LCG) over a small label universe.
    let seed = 42;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return Math.floor(seed / 65536) % n;
    };
    const apps = ['a', 'b', 'c'];
    const nss = ['x', 'y'];
    const selectors = [
      sel({ app: 'a' }),
      sel({ 'k8s:io.kubernetes.pod.namespace': 'x' }),
      Selector.fromSpec({ matchExpressions: [{ key: 'app', operator: 'NotIn', values: ['a', 'b'] }] }, 't'),
      Selector.fromSpec({ matchExpressions: [{ key: 'tier', operator: 'Exists' }] }, 't'),
      Selector.all,
    ];
    const c = new SelectorCache();
    selectors.forEach((s, i) => c.addSelector(s, `u${i}`));
    const live = new Map<number, Identity>();
    for (let step = 0; step < 300; step++) {
      const id = 256 + rnd(20);
      const added: Identity[] = [];
      const removed: Identity[] = [];
      if (live.has(id) && rnd(2) === 0) {
        removed.push(live.get(id)!);
        live.delete(id);
      } else {
        const labels = `app=${apps[rnd(3)]},k8s:io.kubernetes.pod.namespace=${nss[rnd(2)]}${rnd(3) === 0 ? ',tier=t' : ''}`;
        const next = ident(id, labels);
        if (live.has(id)) removed.push(live.get(id)!);
        added.push(next);
        live.set(id, next);
      }
      c.updateIdentities(added, removed);
      for (const s of selectors) {
        const want = [...live.values()].filter((i) => s.matches(i.labels)).map((i) => i.id).sort((x, y) => x - y);
        assert.deepEqual([...c.selections(s)].sort((x, y) => x - y), want, `step ${step} selector ${s.key}`);
      }
    }
  });
});
