import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { encodeResource } from '../../envoy-api/resource.js';
import { ExtensionTypeUrl, TypeUrl } from '../../envoy-api/type-urls.js';
import {
  buildDownstreamTransportSocket,
  buildIdentityClientTls,
  buildIdentityServerTls,
  buildTlsCertificateSecret,
  buildUpstreamTransportSocket,
  buildValidationSecret,
  identitySecretName,
  trustBundleSecretName,
} from '../../proxy-config/builders/tls.js';

// Generated TLS configuration is reviewed as a diff: refresh with UPDATE_GOLDEN=1.
const UPDATE = process.env.UPDATE_GOLDEN === '1';
const goldenDir = (name: string) => fileURLToPath(new URL(`../../../test/golden/${name}/`, import.meta.url));
const CA = '-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n';
const CERT = '-----BEGIN CERTIFICATE-----\nLEAF\n-----END CERTIFICATE-----\n';
const KEY = '-----BEGIN PRIVATE KEY-----\nKEY\n-----END PRIVATE KEY-----\n';
const TD = 'cluster.l7m';

interface Case {
  name: string;
  secrets: Record<string, unknown>[];
  downstream?: Record<string, unknown>;
  upstream?: Record<string, unknown>;
  principal?: Record<string, unknown>;
}

const cases: Case[] = [
  {
    name: 'tls-identity-mtls',
    secrets: [
      buildValidationSecret(trustBundleSecretName(TD), CA),
      buildTlsCertificateSecret(identitySecretName(256), CERT, KEY),
      buildTlsCertificateSecret(identitySecretName(1000), CERT, KEY),
    ],
    downstream: buildIdentityServerTls(TD, 256, [1001, 1000]).transportSocket,
    upstream: buildIdentityClientTls(TD, 1000, [256]),
    principal: buildIdentityServerTls(TD, 256, [1001, 1000]).principal,
  },
  {
    name: 'tls-terminating-originating',
    secrets: [buildTlsCertificateSecret('default/front-tls', CERT, KEY), buildValidationSecret('default/origin-ca-ca', CA)],
    downstream: buildDownstreamTransportSocket({ certificateSecret: 'default/front-tls', requireClientCertificate: false, alpn: ['http/1.1'] }),
    upstream: buildUpstreamTransportSocket({ validationSecret: 'default/origin-ca-ca', sni: 'api.example.com', peerDnsNames: ['api.example.com'] }),
  },
];

describe('tls golden files (test/golden/<case>/resources.json)', () => {
  for (const c of cases) {
    it(`${c.name} matches`, () => {
      const dir = goldenDir(c.name);
      const file = `${dir}resources.json`;
      const { name: _n, ...rest } = c;
      const text = JSON.stringify(rest, null, 2) + '\n';
      if (UPDATE) {
        mkdirSync(dir, { recursive: true });
        writeFileSync(file, text);
      }
      assert.ok(existsSync(file), `${file} missing; run with UPDATE_GOLDEN=1 and review the diff`);
      assert.equal(text, readFileSync(file, 'utf8'));
    });
    it(`${c.name} encodes as Envoy protos`, () => {
      for (const s of c.secrets) assert.ok(encodeResource(TypeUrl.Secret, s).length > 0);
      const body = (sock: Record<string, unknown>, url: string) => {
        const { '@type': type, ...rest } = sock.typed_config as Record<string, unknown>;
        assert.equal(type, url);
        return rest;
      };
      if (c.downstream) encodeResource(ExtensionTypeUrl.DownstreamTlsContext, body(c.downstream, ExtensionTypeUrl.DownstreamTlsContext));
      if (c.upstream) encodeResource(ExtensionTypeUrl.UpstreamTlsContext, body(c.upstream, ExtensionTypeUrl.UpstreamTlsContext));
    });
  }
});
