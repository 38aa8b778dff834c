import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

// The closing line CI reads comes from scripts/count-reporter.cjs; this pins that the
// package is ESM so every compiled test loads as a module.
describe('project skeleton', () => {
  it('is an ES module package with the l7mesh bin', () => {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8'));
    assert.equal(pkg.type, 'module');
    assert.equal(pkg.bin.l7mesh, 'bin/l7mesh');
  });
});
