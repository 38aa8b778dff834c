import assert from 'node:assert/strict';
import { Ipam, parseCidr, podNames } from '../../agent/endpoint/index.js';

describe('IPAM', () => {
  it('reserves the network and gateway addresses and allocates lowest-first', () => {
    const ipam = new Ipam('10.9.0.0/29');
    assert.equal(ipam.gateway, '10.9.0.1');
    assert.deepEqual(['a', 'b', 'c', 'd', 'e'].map((o) => ipam.allocate(o)), ['10.9.0.2', '10.9.0.3', '10.9.0.4', '10.9.0.5', '10.9.0.6']);
    assert.throws(() => ipam.allocate('f'), /exhausted/);
    assert.equal(ipam.allocate('c'), '10.9.0.4', 'same owner, same address');
    ipam.release('10.9.0.3');
    assert.equal(ipam.allocate('g'), '10.9.0.3');
  });

  it('restores allocations and refuses conflicting claims', () => {
    const ipam = new Ipam('10.9.0.0/24');
    ipam.claim('10.9.0.7', 'web');
    assert.throws(() => ipam.claim('10.9.0.7', 'db'), /already allocated to web/);
    assert.throws(() => ipam.claim('10.9.0.1', 'db'), /not an assignable address/);
    assert.deepEqual(ipam.allocated(), [{ ip: '10.9.0.7', owner: 'web' }]);
  });

  it('rejects malformed CIDRs and pod names with the field named', () => {
    assert.throws(() => parseCidr('10.9.0.1/24'), /podCidr: .* host bits set/);
    assert.throws(() => parseCidr('10.9.0.0/31'), /podCidr/);
    assert.throws(() => podNames('Web-1'), /pod name: "Web-1"/);
    assert.deepEqual(podNames('web1'), { netns: 'l7m-web1', hostVeth: 'l7mweb1', tmpPeer: 'l7mpweb1', cgroup: 'l7m-web1' });
  });
});
