// What the agent needs to create a workload ("pod"): a network namespace, a veth pair,
// a cgroup and an address. The kernel implementation lives in agent/endpoint/; the fake
// only hands out addresses.

export interface PodSpec {
  /** Endpoint id; plumbing derives its kernel names from it (prefix l7m). */
  id: number;
  name: string;
}

/** What the agent persists about a pod so a restarted agent can adopt it. */
export interface PodHandle {
  ipv4: string;
  /** The node's address on the pod's veth: the pod's gateway and Envoy's listen address. */
  gateway: string;
  netns?: string;
  hostIfName?: string;
  cgroupPath?: string;
}

export interface EndpointPlumbing {
  readonly kind: string;
  create(spec: PodSpec): Promise<PodHandle>;
  /** True when the pod's kernel objects still exist (after an agent restart). */
  exists(handle: PodHandle): Promise<boolean>;
  /** Removes the pod's processes, namespace, veth and cgroup; idempotent. */
  delete(handle: PodHandle): Promise<void>;
}
