import assert from 'node:assert/strict';
import { buildRouteConfiguration } from '../../proxy-config/builders/route.js';
import { planChains } from '../../proxy-config/builders/chains.js';
import { rulePathKey } from '../../proxy-config/builders/rbac.js';
import type { HttpRule } from '../../policy/l7-rules.js';
import { OPEN, httpRedirect, origin } from '../support/proxy-cases.js';

// Property: splitting routes by path never hides a policy that could allow a request.
// For random rule sets and request paths, the route Envoy would pick (first match:
// longest literal prefix of the whole :path, the guard aside) must carry every policy
// whose path requirement the request meets.

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const SEGMENTS = ['api', 'v1', 'v2', 'data', 'users', 'a', 'ab', ''];

function randomRule(r: () => number): HttpRule {
  const depth = 1 + Math.floor(r() * 3);
  const lit = '/' + Array.from({ length: depth }, () => SEGMENTS[Math.floor(r() * SEGMENTS.length)]).join('/');
  const k = r();
  if (k < 0.35) return { path: lit.replace(/\./g, '\\.') };
  if (k < 0.7) return { path: `${lit}.*` };
  if (k < 0.85) return { path: `${lit}[0-9]+` };
  return { method: 'GET' };
}

function randomPath(r: () => number): string {
  const depth = 1 + Math.floor(r() * 4);
  let p = '/' + Array.from({ length: depth }, () => SEGMENTS[Math.floor(r() * SEGMENTS.length)]).join('/');
  if (r() < 0.3) p += '?q=' + SEGMENTS[Math.floor(r() * SEGMENTS.length)];
  return p;
}

/** The route Envoy picks (guard aside): longest prefix in the :path tree, else the catch-all. */
export function chooseRoute(vh: any, fullPath: string): any {
  if (vh.routes) return vh.routes.slice(1).find((rt: any) => fullPath.startsWith(rt.match.prefix));
  const tree = vh.matcher.on_no_match.matcher;
  const keys = Object.keys(tree.matcher_tree.prefix_match_map.map).filter((k) => fullPath.startsWith(k));
  keys.sort((a, b) => b.length - a.length);
  return keys.length ? tree.matcher_tree.prefix_match_map.map[keys[0]!].action.typed_config : tree.on_no_match.action.typed_config;
}

function policyMayMatch(rule: HttpRule, fullPath: string): boolean {
  const k = rulePathKey(rule);
  if (k.kind === 'any') return rule.path === undefined || new RegExp(`^(?:${rule.path})$`, 's').test(fullPath);
  return k.kind === 'exact' ? fullPath === k.literal : fullPath.startsWith(k.literal);
}

describe('proxy-config routes: path-split routes keep every policy that could match', () => {
  it('holds for 300 random rule sets × 40 paths', () => {
    const r = rng(7);
    for (let t = 0; t < 300; t++) {
      const rules = Array.from({ length: 1 + Math.floor(r() * 8) }, () => randomRule(r));
      const named = rules.map((rule, i) => [rule, origin('p', `r${i}`)] as [HttpRule, ReturnType<typeof origin>]);
      const [plan] = planChains([{ name: 'e', ip: '10.0.0.1', policy: { identity: 1, ingress: { enforced: true, entries: [httpRedirect(0, 80, named)] }, egress: OPEN } }]);
      const rc = buildRouteConfiguration(plan!, new Map()) as any;
      for (let q = 0; q < 40; q++) {
        const path = randomPath(r);
        const chosen = chooseRoute(rc.virtual_hosts[0], path);
        assert.ok(chosen, `no route for ${path}`);
        const carried = new Set(Object.keys(chosen.typed_per_filter_config['l7mesh.rbac.ingress'].rbac.rules.policies));
        named.forEach(([rule, o]) => {
          if (policyMayMatch(rule, path)) {
            assert.ok(carried.has(`CiliumNetworkPolicy/p/${o.path}`), `rules ${JSON.stringify(rules)}: ${path} took ${chosen.name} without ${o.path}`);
          }
        });
      }
    }
  });

  it('a 100-rule set of distinct prefixes gives each route one candidate policy', () => {
    const named = Array.from({ length: 100 }, (_, i) => [{ method: 'GET', path: `/r-${String(i).padStart(3, '0')}/.*` }, origin('p', `r${i}`)] as [HttpRule, ReturnType<typeof origin>]);
    const [plan] = planChains([{ name: 'e', ip: '10.0.0.1', policy: { identity: 1, ingress: { enforced: true, entries: [httpRedirect(0, 80, named)] }, egress: OPEN } }]);
    const vh = (buildRouteConfiguration(plan!, new Map()) as any).virtual_hosts[0];
    const policiesOf = (rt: any) => Object.keys(rt.typed_per_filter_config['l7mesh.rbac.ingress'].rbac.rules.policies);
    assert.equal(Object.keys(vh.matcher.on_no_match.matcher.matcher_tree.prefix_match_map.map).length, 100);
    assert.deepEqual(policiesOf(chooseRoute(vh, '/r-042/x')), ['CiliumNetworkPolicy/p/r42']);
    assert.equal(policiesOf(chooseRoute(vh, '/elsewhere')).length, 100);
  });
});
