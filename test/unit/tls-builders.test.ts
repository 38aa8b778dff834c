import assert from 'node:assert/strict';
import { decodeResource, encodeResource } from '../../envoy-api/resource.js';
import { ExtensionTypeUrl, TypeUrl } from '../../envoy-api/type-urls.js';
import {
  buildDownstreamTlsContext,
  buildDownstreamTransportSocket,
  buildTlsCertificateSecret,
  buildUpstreamTlsContext,
  buildUriSanPrincipal,
  buildValidationSecret,
  buildIdentityClientTls,
  buildIdentityServerTls,
  findMissingSecrets,
  sdsSecretNamesOf,
} from '../../proxy-config/builders/tls.js';

describe('tls: Envoy TLS builders', () => {
  it('builds Secrets that encode as envoy.extensions.transport_sockets.tls.v3.Secret', () => {
    const cert = buildTlsCertificateSecret('l7m-identity-256', 'CERT', 'KEY');
    assert.deepEqual(decodeResource(TypeUrl.Secret, encodeResource(TypeUrl.Secret, cert)), {
      name: 'l7m-identity-256',
      tls_certificate: { certificate_chain: { inline_string: 'CERT' }, private_key: { inline_string: 'KEY' } },
    });
    const v = buildValidationSecret('l7m-trust-x', 'CA', ['spiffe://x/identity/300', 'spiffe://x/identity/256', 'spiffe://x/identity/300']);
    assert.deepEqual((decodeResource(TypeUrl.Secret, encodeResource(TypeUrl.Secret, v)) as any).validation_context.match_typed_subject_alt_names, [
      { san_type: 'URI', matcher: { exact: 'spiffe://x/identity/256' } },
      { san_type: 'URI', matcher: { exact: 'spiffe://x/identity/300' } },
    ]);
  });

  it('downstream mTLS context fetches both secrets over ADS and requires a client certificate', () => {
    const ctx = buildDownstreamTlsContext({ certificateSecret: 'c', validationSecret: 'v', peerUris: ['spiffe://x/identity/256'], requireClientCertificate: true });
    const back = decodeResource(ExtensionTypeUrl.DownstreamTlsContext, encodeResource(ExtensionTypeUrl.DownstreamTlsContext, ctx)) as any;
    assert.equal(back.require_client_certificate.value, true);
    assert.deepEqual(back.common_tls_context.tls_certificate_sds_secret_configs, [{ name: 'c', sds_config: { ads: {}, resource_api_version: 'V3' } }]);
    assert.equal(back.common_tls_context.combined_validation_context.validation_context_sds_secret_config.name, 'v');
    assert.equal(back.common_tls_context.combined_validation_context.default_validation_context.match_typed_subject_alt_names[0].matcher.exact, 'spiffe://x/identity/256');
    const sock = buildDownstreamTransportSocket({ certificateSecret: 'c', requireClientCertificate: false });
    assert.equal((sock.typed_config as any)['@type'], ExtensionTypeUrl.DownstreamTlsContext);
  });

  it('refuses contexts that would authenticate nothing', () => {
    assert.throws(() => buildDownstreamTlsContext({ certificateSecret: 'c', requireClientCertificate: true }), /validationSecret: required when requireClientCertificate/);
    assert.throws(() => buildDownstreamTlsContext({ certificateSecret: 'c', peerUris: ['spiffe://x/identity/1'], requireClientCertificate: false }), /peerUris: needs validationSecret/);
    assert.throws(() => buildUriSanPrincipal([]), /uris: at least one/);
  });

  it('upstream context verifies the server and sets SNI', () => {
    const ctx = buildUpstreamTlsContext({ validationSecret: 'v', certificateSecret: 'c', sni: 'api.example' });
    const back = decodeResource(ExtensionTypeUrl.UpstreamTlsContext, encodeResource(ExtensionTypeUrl.UpstreamTlsContext, ctx)) as any;
    assert.equal(back.sni, 'api.example');
    assert.equal(back.common_tls_context.validation_context_sds_secret_config.name, 'v');
  });

  it('principals match the authenticated URI SAN', () => {
    assert.deepEqual(buildUriSanPrincipal(['spiffe://x/identity/256']), { authenticated: { principal_name: { exact: 'spiffe://x/identity/256' } } });
    assert.deepEqual(buildUriSanPrincipal(['b', 'a']), {
      or_ids: { ids: [{ authenticated: { principal_name: { exact: 'a' } } }, { authenticated: { principal_name: { exact: 'b' } } }] },
    });
  });

  it('identity hop builders pair the server socket, its principal and the client socket', () => {
    const server = buildIdentityServerTls('c.l7m', 256, [1001, 1000]);
    const ctx = (server.transportSocket.typed_config as any).common_tls_context;
    assert.equal(ctx.tls_certificate_sds_secret_configs[0].name, 'l7m-identity-256');
    assert.equal(ctx.validation_context_sds_secret_config.name, 'l7m-trust-c.l7m');
    assert.deepEqual((server.principal as any).or_ids.ids.map((i: any) => i.authenticated.principal_name.exact), [
      'spiffe://c.l7m/identity/1000',
      'spiffe://c.l7m/identity/1001',
    ]);
    const client = buildIdentityClientTls('c.l7m', 1000, [256]);
    const cctx = (client.typed_config as any).common_tls_context;
    assert.equal(cctx.tls_certificate_sds_secret_configs[0].name, 'l7m-identity-1000');
    assert.deepEqual(cctx.combined_validation_context.default_validation_context.match_typed_subject_alt_names, [
      { san_type: 'URI', matcher: { exact: 'spiffe://c.l7m/identity/256' } },
    ]);
    assert.throws(() => buildIdentityClientTls('c.l7m', 1000, []), /peerIdentities: at least one/);
    assert.throws(() => buildIdentityServerTls('c.l7m', 256, []), /uris: at least one/);
  });

  it('finds SDS references a snapshot does not carry', () => {
    const server = buildIdentityServerTls('c.l7m', 256, [1000]);
    const listener = { name: 'in', filter_chains: [{ filters: [], transport_socket: server.transportSocket }] };
    const cluster = { name: 'peer', transport_socket: buildIdentityClientTls('c.l7m', 1000, [256]) };
    assert.deepEqual(sdsSecretNamesOf(listener), ['l7m-identity-256', 'l7m-trust-c.l7m']);
    assert.deepEqual(sdsSecretNamesOf(cluster), ['l7m-identity-1000', 'l7m-trust-c.l7m']);
    const secrets = [buildValidationSecret('l7m-trust-c.l7m', 'CA'), buildTlsCertificateSecret('l7m-identity-256', 'C', 'K')];
    assert.deepEqual(findMissingSecrets({ listeners: [listener], clusters: [cluster], secrets }), [
      'clusters[0] "peer": SDS secret "l7m-identity-1000" is not in the snapshot',
    ]);
    assert.deepEqual(findMissingSecrets({ listeners: [listener], secrets }), []);
  });
});
