// `l7mesh service create|list|delete` and `bpf lb list` against a live agent API on a
// unix socket (agent with the in-memory datapath): output, json, errors, exit codes.
import assert from 'node:assert/strict';
import { cliRig } from './support/harness.js';

describe('l7mesh service CLI', () => {
  const { run } = cliRig();

  it('creates, lists, shows the maps of, and deletes a service', async () => {
    for (const n of ['web1', 'web2']) assert.equal((await run('endpoint', 'create', n, '--labels', 'app=web')).code, 0);
    const c = await run('service', 'create', 'web', '--vip', '10.96.0.10', '--port', '80', '--target-port', '8080', '--selector', 'app=web', '--algorithm', 'maglev');
    assert.equal(c.code, 0, c.err);
    assert.match(c.out, /web\s+10\.96\.0\.10:80\/tcp\s+maglev\s+None\s+.*\(web1\) active, .*\(web2\) active/);
    const list = JSON.parse((await run('service', 'list', '-o', 'json')).out) as { name: string; backends: unknown[] }[];
    assert.deepEqual(list.map((s) => [s.name, s.backends.length]), [['web', 2]]);
    const lb = await run('bpf', 'lb', 'list');
    assert.match(lb.out, /10\.96\.0\.10:80\/tcp\s+1\s+web\s+maglev \(table\)\s+[\d.]+:8080 \(\d+\) active/);
    const d = await run('service', 'delete', 'web');
    assert.equal(d.code, 0, d.err);
    assert.match(d.out, /Deleted service web/);
    assert.equal(JSON.parse((await run('bpf', 'lb', 'list', '-o', 'json')).out).length, 0);
  });

  it('reports the fields the agent refuses, with a failing exit code', async () => {
    const r = await run('service', 'create', 'bad', '--vip', '10.96.0.300', '--port', 'http', '--backend', '10.0.0.1');
    assert.notEqual(r.code, 0);
    assert.match(r.err, /vip: must be an IPv4 address/);
    assert.match(r.err, /port: must be an integer/);
    const s = await run('service', 'create', 'bad2', '--vip', '10.96.0.3', '--port', '80', '--selector', 'novalue');
    assert.notEqual(s.code, 0);
    assert.match(s.err, /--selector: "novalue" is not key=value/);
  });
});
