import assert from 'node:assert/strict';
import { entryToFlow } from '../../observe/als.js';
import { buildBootstrap } from '../../proxy-config/bootstrap.js';
import { buildOriginalDstCluster } from '../../proxy-config/builders/cluster.js';
import { buildRedirectListener } from '../../proxy-config/builders/listener.js';
import { encodeBootstrap } from '../../envoy-api/resource.js';

const ips: Record<string, { identity: number; labels: string[]; pod_name?: string }> = {
  '10.0.0.1': { identity: 300, labels: ['k8s:app=client'], pod_name: 'client' },
  '10.0.0.2': { identity: 301, labels: ['k8s:app=server'] },
};
const resolve = (ip: string) => ips[ip];

function entry(over: { details?: string; code?: number; rbac?: Record<string, string>; route?: string }) {
  const fields = Object.fromEntries(Object.entries(over.rbac ?? {}).map(([k, v]) => [k, { stringValue: v }]));
  return {
    common_properties: {
      downstream_remote_address: { socket_address: { address: '10.0.0.1', port_value: 40000 } },
      downstream_local_address: { socket_address: { address: '10.0.0.2', port_value: 80 } },
      start_time: { seconds: 1_700_000_000, nanos: 5_000_000 },
      route_name: over.route ?? 'l7mesh|ingress|-|default/server|80',
      metadata: { filter_metadata: { 'envoy.filters.http.rbac': { fields } } },
    },
    protocol_version: 'HTTP11',
    request: { request_method: 'GET', path: '/api/v1/x', authority: 'server', scheme: 'http', request_headers: { 'content-type': 'text/plain' } },
    response: { response_code: { value: over.code ?? 200 }, response_code_details: over.details ?? 'via_upstream' },
  };
}

describe('observe/als: access-log entry → flow', () => {
  it('allowed request: identities, direction, rule, Hubble field names', () => {
    const f = entryToFlow(
      entry({ rbac: { l7m_in_enforced_engine_result: 'allowed', l7m_in_enforced_effective_policy_id: 'CiliumNetworkPolicy/default/p/spec.ingress[0].toPorts[0].rules.http[0]' } }),
      resolve,
      'node-1',
    );
    assert.equal(f.verdict, 'FORWARDED');
    assert.equal(f.time, '2023-11-14T22:13:20.005Z');
    assert.deepEqual(f.source, ips['10.0.0.1']);
    assert.equal(f.destination.identity, 301);
    assert.equal(f.traffic_direction, 'INGRESS');
    assert.equal(f.is_reply, false);
    assert.deepEqual(f.l4, { TCP: { source_port: 40000, destination_port: 80 } });
    assert.deepEqual(f.l7?.http, { code: 200, method: 'GET', url: 'http://server/api/v1/x', protocol: 'HTTP/1.1', headers: [{ key: 'content-type', value: 'text/plain' }] });
    assert.deepEqual(f.policy, [{ direction: 'ingress', result: 'allowed', enforced: true, rule_id: 'CiliumNetworkPolicy/default/p/spec.ingress[0].toPorts[0].rules.http[0]', name: 'default/p', kind: 'CiliumNetworkPolicy', rule_path: 'spec.ingress[0].toPorts[0].rules.http[0]' }]);
    assert.equal(f.node_name, 'node-1');
  });

  it('RBAC denial → DROPPED / POLICY_DENIED', () => {
    const f = entryToFlow(entry({ code: 403, details: 'rbac_access_denied_matched_policy[none]', rbac: { l7m_in_enforced_engine_result: 'denied' } }), resolve);
    assert.equal(f.verdict, 'DROPPED');
    assert.equal(f.drop_reason_desc, 'POLICY_DENIED');
  });

  it('shadow deny on a request that passed → AUDIT, not enforced', () => {
    const f = entryToFlow(entry({ rbac: { l7m_in_shadow_engine_result: 'denied' } }), resolve);
    assert.equal(f.verdict, 'AUDIT');
    assert.equal(f.policy[0]?.enforced, false);
  });

  it('egress chain → EGRESS; both directions reported', () => {
    const f = entryToFlow(entry({ route: 'l7mesh|egress|default/client|-|80', rbac: { l7m_out_enforced_engine_result: 'allowed', l7m_in_shadow_engine_result: 'allowed' } }), resolve);
    assert.equal(f.traffic_direction, 'EGRESS');
    assert.deepEqual(f.policy.map((p) => p.direction), ['egress', 'ingress']);
  });

  it('rejected before routing (codec/normalisation) → DROPPED / PROXY_REJECTED; unknown address → world', () => {
    const e = entry({ code: 400, details: 'http1.codec_error', route: '' });
    e.common_properties.downstream_remote_address.socket_address.address = '192.0.2.9';
    const f = entryToFlow(e, resolve);
    assert.equal(f.verdict, 'DROPPED');
    assert.equal(f.drop_reason_desc, 'PROXY_REJECTED');
    assert.deepEqual(f.source, { identity: 2, labels: ['reserved:world'] });
    assert.equal(f.traffic_direction, 'TRAFFIC_DIRECTION_UNKNOWN');
  });
});

describe('proxy-config bootstrap and input checks', function () {
  this.timeout(30_000);
  it('builds an encodable bootstrap with ADS, admin on a unix socket and the access-log cluster', () => {
    const b = buildBootstrap({ nodeId: 'n1', admin: { path: '/run/l7mesh/admin.sock' }, xds: { host: '127.0.0.1', port: 18000 }, accessLog: { path: '/run/l7mesh/als.sock' } }) as any;
    assert.deepEqual(b.admin.address, { pipe: { path: '/run/l7mesh/admin.sock' } });
    assert.deepEqual(b.static_resources.clusters.map((c: any) => c.name), ['l7mesh-xds', 'l7mesh-access-log']);
    assert.equal(b.dynamic_resources.ads_config.grpc_services[0].envoy_grpc.cluster_name, 'l7mesh-xds');
    assert.equal(b.dynamic_resources.ads_config.api_type, 'DELTA_GRPC');
    assert.ok(encodeBootstrap(b).length > 0);
    const sotw = buildBootstrap({ nodeId: 'n1', admin: { path: '/a' }, xds: { host: '127.0.0.1', port: 1 }, adsApi: 'sotw' }) as any;
    assert.equal(sotw.dynamic_resources.ads_config.api_type, 'GRPC');
  });

  it('refuses an admin address beyond loopback, relative socket paths and empty node ids', () => {
    assert.throws(() => buildBootstrap({ nodeId: 'n', admin: { host: '0.0.0.0', port: 9901 }, xds: { host: '127.0.0.1', port: 1 } }), /admin\.host: "0\.0\.0\.0" must be a loopback/);
    assert.throws(() => buildBootstrap({ nodeId: 'n', admin: { path: 'a.sock' }, xds: { host: '127.0.0.1', port: 1 } }), /admin\.path/);
    assert.throws(() => buildBootstrap({ nodeId: '', admin: { path: '/a' }, xds: { host: '127.0.0.1', port: 1 } }), /nodeId/);
  });

  it('refuses a bad listener port and a bad socket mark', () => {
    assert.throws(() => buildRedirectListener({ address: '127.0.0.1', port: 0 }, []), /listener\.port: 0/);
    assert.throws(() => buildOriginalDstCluster({ upstreamSocketMark: -1 }), /upstreamSocketMark/);
  });
});

describe('proxy-config envoy binary lookup', () => {
  it('names the missing file and the fix', async () => {
    const { envoyBinaryPath } = await import('../../proxy-config/supervisor/envoy-binary.js');
    assert.throws(() => envoyBinaryPath('/nonexistent-l7mesh-root'), /\/nonexistent-l7mesh-root\/\.tools\/envoy-path is missing \(run scripts\/setup\.sh\)/);
  });
});
