import assert from 'node:assert/strict';
import { typed } from '../../envoy-api/resource.js';
import { ExtensionTypeUrl, TypeUrl } from '../../envoy-api/type-urls.js';
import { SnapshotCache, SnapshotError, findDanglingReferences } from '../../xds/index.js';
import { cla } from './xds-fakes.js';

const ads = { ads: {} };
const rdsListener = (name: string, route: string, source: object = ads) => ({
  name,
  filter_chains: [{ filters: [{ name: 'hcm', typed_config: typed(ExtensionTypeUrl.HttpConnectionManager, { stat_prefix: 's', rds: { route_config_name: route, config_source: source } }) }] }],
});
const apiListener = (name: string, route: string) => ({
  name,
  api_listener: { api_listener: typed(ExtensionTypeUrl.HttpConnectionManager, { rds: { route_config_name: route, config_source: ads } }) },
});
const edsCluster = (name: string, service?: string) => ({ name, type: 'EDS', eds_cluster_config: { eds_config: ads, ...(service ? { service_name: service } : {}) } });

describe('xds snapshot consistency (dangling references)', () => {
  const cases: Array<{ name: string; input: Record<string, object[]>; problems: RegExp[] }> = [
    { name: 'complete snapshot', input: { [TypeUrl.Listener]: [rdsListener('l', 'r')], [TypeUrl.Route]: [{ name: 'r' }], [TypeUrl.Cluster]: [edsCluster('c')], [TypeUrl.Endpoint]: [cla('c')] }, problems: [] },
    { name: 'missing route', input: { [TypeUrl.Listener]: [rdsListener('l', 'r')] }, problems: [/Listener\[0\] "l": route "r" \(rds\) is not in the snapshot/] },
    { name: 'missing route of an api_listener', input: { [TypeUrl.Listener]: [apiListener('svc', 'r2')] }, problems: [/"svc": route "r2"/] },
    { name: 'route served elsewhere is not checked', input: { [TypeUrl.Listener]: [rdsListener('l', 'r', { path_config_source: { path: '/x' } })] }, problems: [] },
    { name: 'missing assignment', input: { [TypeUrl.Cluster]: [edsCluster('c')] }, problems: [/Cluster\[0\] "c": ClusterLoadAssignment "c" \(EDS\)/] },
    { name: 'service_name names the assignment', input: { [TypeUrl.Cluster]: [edsCluster('c', 'svc')], [TypeUrl.Endpoint]: [cla('c')] }, problems: [/ClusterLoadAssignment "svc"/] },
    { name: 'static cluster needs no assignment', input: { [TypeUrl.Cluster]: [{ name: 's', type: 'STATIC' }] }, problems: [] },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const found = findDanglingReferences(c.input);
      assert.equal(found.length, c.problems.length, found.join('\n'));
      c.problems.forEach((re, i) => assert.match(found[i]!, re));
    });
  }

  it('setSnapshot refuses a dangling snapshot by default and keeps the previous one; "allow" turns the check off', () => {
    const cache = new SnapshotCache();
    const v = cache.setSnapshot('n', { [TypeUrl.Cluster]: [edsCluster('c')], [TypeUrl.Endpoint]: [cla('c')] });
    assert.throws(() => cache.setSnapshot('n', { [TypeUrl.Cluster]: [edsCluster('c'), edsCluster('d')], [TypeUrl.Endpoint]: [cla('c')] }), SnapshotError);
    assert.equal(cache.getSnapshot('n')!.version, v);
    const loose = new SnapshotCache({ references: 'allow' });
    loose.setSnapshot('n', { [TypeUrl.Cluster]: [edsCluster('d')] });
  });
});
