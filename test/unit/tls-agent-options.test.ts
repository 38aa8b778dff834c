import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseDaemonArgs } from '../../agent/main.js';
import { NodeTls } from '../../agent/tls/node-tls.js';
import { parseTlsDaemonOptions } from '../../agent/tls/daemon-options.js';

describe('agent TLS options and the node CA', () => {
  it('defaults: trust domain cluster.local, secrets under the state directory', () => {
    assert.deepEqual(parseTlsDaemonOptions('/var/lib/x', {}), { stateDir: '/var/lib/x', secretsDir: '/var/lib/x/secrets', trustDomain: 'cluster.local' });
    const o = parseDaemonArgs(['--state-dir', '/s', '--secrets-dir', '/etc/sec', '--trust-domain', 'prod.example', '--identity-cert-lifetime', '600']);
    assert.ok(o !== 'help');
    assert.deepEqual(o.tls, { stateDir: '/s', secretsDir: '/etc/sec', trustDomain: 'prod.example', identityLifetimeMs: 600_000 });
  });

  it('refuses bad values naming the option', () => {
    assert.throws(() => parseTlsDaemonOptions('/s', { trustDomain: 'Bad Domain' }), /^ConfigError: trust-domain: /);
    assert.throws(() => parseTlsDaemonOptions('/s', { identityCertLifetime: 1 }), /identity-cert-lifetime: 1 s must be between 3 s and 30 days/);
    assert.throws(() => parseTlsDaemonOptions('/s', { secretsDir: '' }), /secrets-dir: must not be empty/);
  });

  it('keeps its CA in <state>/ca across restarts (key 0600) and serves the trust bundle', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'l7m-tls-opts-'));
    try {
      const hooks = { onChange: () => undefined, onError: (e: Error) => assert.fail(e) };
      const a = await NodeTls.open({ stateDir: dir, trustDomain: 'cluster.local', secretsDir: join(dir, 'secrets'), fileRefreshMs: 0, ...hooks });
      const pem = a.ca.certificatePem;
      a.close();
      assert.equal(statSync(join(dir, 'ca', 'ca.key')).mode & 0o777, 0o600);
      const b = await NodeTls.open({ stateDir: dir, trustDomain: 'cluster.local', secretsDir: join(dir, 'secrets'), fileRefreshMs: 0, ...hooks });
      assert.equal(b.ca.certificatePem, pem, 'the same CA after a restart');
      await b.prepare([], [256]);
      assert.deepEqual(b.secrets().map((s) => s.name), ['l7m-identity-256', 'l7m-trust-cluster.local']);
      b.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
