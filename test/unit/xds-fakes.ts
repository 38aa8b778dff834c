// Fakes for unit tests of the xDS protocol: a transport that records responses.
import { TypeUrl } from '../../envoy-api/type-urls.js';
import type { StreamSink } from '../../xds/index.js';
import { decodeDeltaDiscoveryResponse, decodeDiscoveryResponse, type DecodedDeltaResponse, type DecodedSotwResponse } from '../../xds/wire.js';
import { decodeResource } from '../../envoy-api/resource.js';

export class FakeSink implements StreamSink {
  readonly peer = 'fake:1';
  readonly written: Buffer[] = [];
  closed?: { code: number; details: string };
  /** When false, write() reports back-pressure. */
  accepting = true;
  private drain?: () => void;

  write(bytes: Buffer): boolean {
    this.written.push(bytes);
    return this.accepting;
  }
  onDrain(cb: () => void): void {
    this.drain = cb;
  }
  close(code: number, details: string): void {
    this.closed = { code, details };
  }
  resume(): void {
    this.accepting = true;
    this.drain?.();
  }
  take(): Buffer[] {
    return this.written.splice(0);
  }
}

export function sotw(b: Buffer): DecodedSotwResponse {
  return decodeDiscoveryResponse(b);
}

export function delta(b: Buffer): DecodedDeltaResponse {
  return decodeDeltaDiscoveryResponse(b);
}

export function namesOf(r: DecodedSotwResponse): string[] {
  return r.resources.map((a) => {
    const o = decodeResource(a.type_url, a.value) as { name?: string; cluster_name?: string };
    return (o.name ?? o.cluster_name)!;
  });
}

/** Lets scheduled push rounds run. */
export async function flush(): Promise<void> {
  for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
}

export const node = (id: string, group?: string) => ({
  id,
  cluster: 'test',
  ...(group ? { metadata: { fields: { group: { string_value: group } } } } : {}),
});

export function cluster(name: string, timeoutS = 1): Record<string, unknown> {
  return { name, type: 'EDS', connect_timeout: { seconds: timeoutS }, eds_cluster_config: { eds_config: { ads: {} } } };
}
export function cla(name: string, port = 80): Record<string, unknown> {
  return { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } } }] }] };
}
export function listener(name: string, port = 1000): Record<string, unknown> {
  return { name, address: { socket_address: { address: '127.0.0.1', port_value: port } } };
}
export function route(name: string, clusterName = 'c1'): Record<string, unknown> {
  return { name, virtual_hosts: [{ name: 'v', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: clusterName } }] }] };
}

export function input(opts: { clusters?: object[]; endpoints?: object[]; listeners?: object[]; routes?: object[] }): Record<string, object[]> {
  return {
    [TypeUrl.Cluster]: opts.clusters ?? [],
    [TypeUrl.Endpoint]: opts.endpoints ?? [],
    [TypeUrl.Listener]: opts.listeners ?? [],
    [TypeUrl.Route]: opts.routes ?? [],
  };
}
