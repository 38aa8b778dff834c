import assert from 'node:assert/strict';
import { typed } from '../../envoy-api/resource.js';
import { ExtensionTypeUrl } from '../../envoy-api/type-urls.js';
import { envoyPath, httpGet, killLeftoverEnvoys, startEnvoy, validateBootstrap, eventually } from './helpers/envoy.js';

// A static bootstrap written as binary proto must be accepted by the real Envoy, so
// one object form serves both xDS resources and bootstraps.
describe('envoy-api: binary Bootstrap accepted by the real Envoy', function () {
  this.timeout(60_000);
  before(function () {
    if (!envoyPath()) {
      console.log('    skipped: envoy binary missing (.tools/envoy-path); run scripts/setup.sh');
      this.skip();
    }
    killLeftoverEnvoys();
  });

  function staticBootstrap(): Record<string, unknown> {
    return {
      node: { id: 'l7m-bootstrap-test', cluster: 'l7m' },
      static_resources: {
        listeners: [
          {
            name: 'direct',
            address: { socket_address: { address: '127.0.0.1', port_value: 0 } },
            filter_chains: [
              {
                filters: [
                  {
                    name: 'envoy.filters.network.http_connection_manager',
                    typed_config: typed(ExtensionTypeUrl.HttpConnectionManager, {
                      stat_prefix: 'direct',
                      route_config: {
                        name: 'r',
                        virtual_hosts: [
                          { name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, direct_response: { status: 200, body: { inline_string: 'pb-ok' } } }] },
                        ],
                      },
                      http_filters: [{ name: 'envoy.filters.http.router', typed_config: typed(ExtensionTypeUrl.Router, {}) }],
                    }),
                  },
                ],
              },
            ],
          },
        ],
      },
    };
  }

  it('validates a .pb bootstrap with --mode validate', () => {
    const r = validateBootstrap(staticBootstrap());
    assert.ok(r.ok, r.output);
  });

  it('rejects a bootstrap Envoy finds invalid (the check can fail)', () => {
    const b = staticBootstrap();
    // Encodes fine as uint32 but breaks Envoy's own rule (port_value <= 65535).
    (b.static_resources as any).listeners[0].address.socket_address.port_value = 70000;
    const r = validateBootstrap(b);
    assert.equal(r.ok, false, 'port 70000 must fail validation');
    assert.match(r.output, /port_value/);
  });

  it('serves the static listener it was started with', async () => {
    const envoy = await startEnvoy(staticBootstrap());
    try {
      const listeners = await eventually('listener bound', async () => {
        const r = await httpGet(envoy.adminPort, '/listeners?format=json');
        const j = JSON.parse(r.body);
        const port = j.listener_statuses?.[0]?.local_address?.socket_address?.port_value;
        return port ? port : undefined;
      });
      const r = await httpGet(listeners, '/');
      assert.equal(r.status, 200);
      assert.equal(r.body, 'pb-ok');
    } finally {
      await envoy.stop();
    }
  });
});
