// Pods in the kernel, behind the agent's EndpointPlumbing contract: agent/endpoint/
// creates the namespace, veth, cgroup and address; this adapter names pods after the
// endpoint id (interface names are short) and re-claims addresses after a restart.

import { existsSync } from 'node:fs';
import { Ipam, createPod, deletePod, podNames } from './endpoint/index.js';
import type { EndpointPlumbing, PodHandle, PodSpec } from './plumbing.js';

export const DEFAULT_POD_CIDR = '10.77.0.0/16';

export class KernelPlumbing implements EndpointPlumbing {
  readonly kind = 'kernel';
  readonly ipam: Ipam;
  private readonly tag: string;

  /** `node` keeps pod names of agents on one machine apart (tests run several). */
  constructor(podCidr = DEFAULT_POD_CIDR, node = '') {
    this.ipam = new Ipam(podCidr);
    this.tag = nodeTag(node);
  }

  get gateway(): string {
    return this.ipam.gateway;
  }

  async create(spec: PodSpec): Promise<PodHandle> {
    const name = `e${this.tag}${spec.id}`;
    // Leftovers of a crashed run with this id would make `ip netns add` fail.
    await deletePod({ name, ip: '' }).catch(() => undefined);
    const pod = await createPod(name, this.ipam);
    return { ipv4: pod.ip, gateway: pod.gateway, netns: pod.netns, hostIfName: pod.hostVeth, cgroupPath: pod.cgroupDir };
  }

  async exists(h: PodHandle): Promise<boolean> {
    if (!h.netns || !h.cgroupPath) return false;
    const ok = existsSync(`/run/netns/${h.netns}`) && existsSync(h.cgroupPath);
    if (ok) this.ipam.claim(h.ipv4, nameOf(h));
    return ok;
  }

  async delete(h: PodHandle): Promise<void> {
    await deletePod({ name: nameOf(h), ip: h.ipv4 }, this.ipam);
  }
}

/** Three base-36 characters from the node name (interface names allow 15 bytes in all). */
export function nodeTag(node: string): string {
  let h = 0x811c9dc5;
  for (const c of node) h = Math.imul(h ^ c.charCodeAt(0), 0x01000193) >>> 0;
  return (h % 36 ** 3).toString(36).padStart(3, '0');
}

function nameOf(h: PodHandle): string {
  const n = h.netns?.replace(/^l7m-/, '');
  if (!n) throw new Error(`pod ${h.ipv4} has no namespace name`);
  podNames(n);
  return n;
}
