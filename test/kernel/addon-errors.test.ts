// Errors from the addon carry errno and libbpf's own message.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Datapath, DatapathError, ensureBpffs, loadNative, nodePinDir } from '../../addon/index.js';
import { requireKernelFeatures } from './harness.js';

const NODE = 'ktest-err';

describe('kernel: addon errors carry errno and the libbpf message', () => {
  before(() => {
    requireKernelFeatures();
    ensureBpffs();
    rmSync(nodePinDir(NODE), { recursive: true, force: true });
  });
  after(() => rmSync(nodePinDir(NODE), { recursive: true, force: true }));

  it('opening a missing pin fails with ENOENT', () => {
    assert.throws(() => Datapath.openMaps(NODE), (e: unknown) => {
      assert.ok(e instanceof DatapathError);
      assert.equal(e.errno, 2);
      assert.match(e.message, /open map l7m_endpoints_v1: open pinned map .*: No such file or directory \(errno 2\)/);
      return true;
    });
  });

  it('refuses to adopt a pinned map whose layout differs, naming it (nothing loaded)', () => {
    const dir = join(nodePinDir(NODE), 'maps');
    mkdirSync(dir, { recursive: true });
    execFileSync('bpftool', ['map', 'create', join(dir, 'l7m_policy_v1'), 'type', 'hash', 'key', '4', 'value', '4', 'entries', '8', 'name', 'l7m_policy_v1']);
    assert.throws(() => Datapath.load(NODE), (e: unknown) => {
      assert.ok(e instanceof DatapathError);
      assert.equal(e.errno, 22);
      assert.match(e.libbpfLog ?? '', /l7m_policy_v1/);
      assert.match(e.message, /\[libbpf: couldn't reuse pinned map .*l7m_policy_v1/);
      return true;
    });
    // libbpf unpinned the maps it had created before the failure.
    assert.deepEqual(readdirSync(dir), ['l7m_policy_v1']);
  });

  it('rejects wrongly sized keys before calling the kernel', () => {
    const n = loadNative();
    rmSync(nodePinDir(NODE), { recursive: true, force: true });
    const dp = Datapath.load(NODE);
    try {
      const raw = new n.BpfMap(join(dp.mapsDir, 'l7m_policy_v1'));
      assert.throws(() => raw.lookup(Buffer.alloc(3)), /key of map .* must be 12 bytes, got 3/);
      raw.close();
    } finally {
      dp.close();
    }
  });
});
