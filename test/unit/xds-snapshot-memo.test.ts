// The snapshot cache reuses the encoding of a resource object it has seen (objects are
// immutable once passed), which lets the agent re-encode only the routes a change touched.

import assert from 'node:assert/strict';
import { TypeUrl } from '../../envoy-api/type-urls.js';
import { buildSnapshot } from '../../xds/index.js';
import { cluster } from './xds-fakes.js';

describe('xds snapshot: encoding reuse by object', () => {
  it('reuses the encoding of the same object and encodes a new object afresh', () => {
    const c = cluster('c1', 1);
    const s1 = buildSnapshot({ [TypeUrl.Cluster]: [c] }, 'e-1');
    // Against the contract (objects are immutable once passed), so the old encoding shows.
    (c as { connect_timeout: { seconds: number } }).connect_timeout.seconds = 9;
    const s2 = buildSnapshot({ [TypeUrl.Cluster]: [c] }, 'e-2', s1);
    assert.equal(s2.get(TypeUrl.Cluster)!.resources.get('c1'), s1.get(TypeUrl.Cluster)!.resources.get('c1'));
    const s3 = buildSnapshot({ [TypeUrl.Cluster]: [cluster('c1', 9)] }, 'e-3', s2);
    assert.notEqual(s3.get(TypeUrl.Cluster)!.resources.get('c1')!.hash, s1.get(TypeUrl.Cluster)!.resources.get('c1')!.hash);
  });

  it('still refuses an invalid object every time it is passed', () => {
    const bad = { name: 'c2', type: 'NOT_A_TYPE' };
    assert.throws(() => buildSnapshot({ [TypeUrl.Cluster]: [bad] }, 'e-4'), /NOT_A_TYPE/);
    assert.throws(() => buildSnapshot({ [TypeUrl.Cluster]: [bad] }, 'e-5'), /NOT_A_TYPE/);
  });
});
