import assert from 'node:assert/strict';
import { loadEnvoyRoot } from '../../envoy-api/protos.js';
import { decodeResource, encodeResource, packAny, typed, ResourceEncodeError } from '../../envoy-api/resource.js';
import { ExtensionTypeUrl, TypeUrl, messageNameOf } from '../../envoy-api/type-urls.js';

function listenerWithRbac(): Record<string, unknown> {
  return {
    name: 'l7m-ingress-8080',
    address: { socket_address: { address: '127.0.0.1', port_value: 8080 } },
    listener_filters: [{ name: 'envoy.filters.listener.original_dst', typed_config: typed(ExtensionTypeUrl.OriginalDst, {}) }],
    filter_chains: [
      {
        filters: [
          {
            name: 'envoy.filters.network.http_connection_manager',
            typed_config: typed(ExtensionTypeUrl.HttpConnectionManager, {
              stat_prefix: 'ingress_http',
              codec_type: 'HTTP1',
              rds: { route_config_name: 'r1', config_source: { ads: {}, resource_api_version: 'V3' } },
              common_http_protocol_options: { idle_timeout: { seconds: 30 } },
              http_filters: [
                {
                  name: 'envoy.filters.http.rbac',
                  typed_config: typed(ExtensionTypeUrl.RbacHttp, {
                    rules: {
                      action: 'DENY',
                      policies: {
                        'allow-get': {
                          permissions: [{ header: { name: ':method', string_match: { exact: 'GET' } } }],
                          principals: [{ direct_remote_ip: { address_prefix: '10.0.0.1', prefix_len: { value: 32 } } }],
                        },
                      },
                    },
                  }),
                },
                { name: 'envoy.filters.http.router', typed_config: typed(ExtensionTypeUrl.Router, {}) },
              ],
            }),
          },
        ],
      },
    ],
  };
}

describe('envoy-api: protos, type URLs and resource encoding', () => {
  it('loads every extension type URL it declares', () => {
    const root = loadEnvoyRoot();
    for (const url of [...Object.values(TypeUrl), ...Object.values(ExtensionTypeUrl)]) {
      assert.ok(root.lookupType(messageNameOf(url)), url);
    }
    assert.ok(root.lookupService('envoy.service.discovery.v3.AggregatedDiscoveryService'));
    assert.ok(root.lookupService('envoy.service.accesslog.v3.AccessLogService'));
    assert.equal(loadEnvoyRoot(), root, 'cached');
  });

  it('round-trips a Listener whose HCM typed_config carries an RBAC filter', () => {
    const input = listenerWithRbac();
    const bytes = encodeResource(TypeUrl.Listener, input);
    const back = decodeResource(TypeUrl.Listener, bytes);
    assert.deepEqual(back, input);
    const hcm = (back as any).filter_chains[0].filters[0].typed_config;
    assert.equal(hcm['@type'], ExtensionTypeUrl.HttpConnectionManager);
    assert.equal(hcm.http_filters[0].typed_config.rules.action, 'DENY');
  });

  it('packAny gives the type URL and the same bytes as encodeResource', () => {
    const any = packAny(TypeUrl.Cluster, { name: 'c1', connect_timeout: { seconds: 1 } });
    assert.equal(any.type_url, TypeUrl.Cluster);
    assert.deepEqual(decodeResource(TypeUrl.Cluster, any.value), { name: 'c1', connect_timeout: { seconds: 1 } });
  });

  const bad: Array<{ name: string; obj: unknown; expect: RegExp }> = [
    { name: 'unknown field', obj: { name: 'x', adress: {} }, expect: /adress: unknown field of envoy\.config\.listener\.v3\.Listener/ },
    { name: 'wrong scalar', obj: { name: 5 }, expect: /name: string expected/ },
    { name: 'bad enum', obj: { name: 'x', traffic_direction: 'SIDEWAYS' }, expect: /traffic_direction: enum .* has no value "SIDEWAYS"/ },
    {
      name: 'bad nested typed field',
      obj: { name: 'x', filter_chains: [{ filters: [{ name: 'f', typed_config: typed(ExtensionTypeUrl.TcpProxy, { stat_prefx: 's' }) }] }] },
      expect: /filter_chains\[0\]\.filters\[0\]\.typed_config\.stat_prefx: unknown field of envoy\.extensions\.filters\.network\.tcp_proxy\.v3\.TcpProxy/,
    },
    {
      name: 'unknown @type',
      obj: { name: 'x', filter_chains: [{ filters: [{ name: 'f', typed_config: { '@type': 'type.googleapis.com/no.Such' } }] }] },
      expect: /typed_config\.@type: unknown message type "no\.Such"/,
    },
    { name: 'negative uint32', obj: { address: { socket_address: { port_value: -1 } } }, expect: /address\.socket_address\.port_value: -1 out of range/ },
    { name: 'two oneof members', obj: { address: { socket_address: { port_value: 1, named_port: 'a' } } }, expect: /oneof "port_specifier" already set/ },
  ];
  for (const c of bad) {
    it(`rejects ${c.name} with the field path`, () => {
      assert.throws(() => encodeResource(TypeUrl.Listener, c.obj as object), (err: unknown) => {
        assert.ok(err instanceof ResourceEncodeError);
        assert.match(err.message, c.expect);
        assert.match(err.message, /^invalid envoy\.config\.listener\.v3\.Listener: /);
        return true;
      });
    });
  }
});
