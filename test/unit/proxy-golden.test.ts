import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeResource } from '../../envoy-api/resource.js';
import { TypeUrl } from '../../envoy-api/type-urls.js';
import { buildProxyResources } from '../../proxy-config/builders/proxy-resources.js';
import { repoRoot } from '../support/paths.js';
import { goldenCases } from '../support/proxy-cases.js';

// Generated Envoy configuration is reviewed as a diff: refresh with UPDATE_GOLDEN=1.
const UPDATE = process.env.UPDATE_GOLDEN === '1';
const KINDS = [
  ['listeners', TypeUrl.Listener],
  ['routes', TypeUrl.Route],
  ['clusters', TypeUrl.Cluster],
] as const;

describe('proxy-config golden files (test/golden/<case>/)', () => {
  for (const c of goldenCases) {
    describe(c.name, () => {
      const out = buildProxyResources(c.input);
      for (const [kind, url] of KINDS) {
        it(`${kind}.json matches`, () => {
          const file = join(repoRoot, 'test/golden', c.name, `${kind}.json`);
          const text = JSON.stringify(out[kind], null, 2) + '\n';
          if (UPDATE) {
            mkdirSync(join(repoRoot, 'test/golden', c.name), { recursive: true });
            writeFileSync(file, text);
          }
          assert.ok(existsSync(file), `${file} missing; run with UPDATE_GOLDEN=1 and review the diff`);
          assert.equal(text, readFileSync(file, 'utf8'));
        });
        it(`${kind} encode as Envoy protos`, () => {
          for (const r of out[kind]) assert.ok(encodeResource(url, r).length > 0);
        });
      }
      it('is deterministic (same input, byte-equal output; endpoint order irrelevant)', () => {
        const again = buildProxyResources({ ...c.input, endpoints: [...c.input.endpoints].reverse() });
        assert.equal(JSON.stringify(again), JSON.stringify(out));
      });
    });
  }
});
