// Pod plumbing without the kernel: hands out addresses from 10.200.0.0/16, creates no
// namespace, veth or cgroup. Used by unit tests and by the benchmark's many endpoints.

import type { EndpointPlumbing, PodHandle, PodSpec } from '../plumbing.js';

export class FakePlumbing implements EndpointPlumbing {
  readonly kind = 'fake';
  readonly live = new Set<string>();
  failCreate = false;

  async create(spec: PodSpec): Promise<PodHandle> {
    if (this.failCreate) throw new Error(`creating netns for endpoint ${spec.id}: Operation not permitted`);
    const ipv4 = `10.200.${(spec.id >> 8) & 255}.${spec.id & 255}`;
    this.live.add(ipv4);
    return { ipv4, gateway: '10.200.255.254' };
  }

  async exists(h: PodHandle): Promise<boolean> {
    return this.live.has(h.ipv4);
  }

  async delete(h: PodHandle): Promise<void> {
    this.live.delete(h.ipv4);
  }
}
