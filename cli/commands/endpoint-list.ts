import { defineApiCommand, EXIT_OK, table } from '../command-kit.js';

export interface EndpointView {
  id: number;
  name: string;
  labels: string[];
  identity?: number;
  state: string;
  ipv4: string;
  netns?: string;
  cgroupPath?: string;
  policyRevision: number;
  ingressEnforced: boolean;
  egressEnforced: boolean;
  lastError?: string;
}

export function endpointTable(eps: EndpointView[]): string {
  return table(
    ['ENDPOINT', 'NAME', 'INGRESS ENFORCED', 'EGRESS ENFORCED', 'IDENTITY', 'IPV4', 'STATE', 'REV', 'LABELS'],
    eps.map((e) => [e.id, e.name, e.ingressEnforced ? 'Enabled' : 'Disabled', e.egressEnforced ? 'Enabled' : 'Disabled', e.identity ?? '-', e.ipv4, e.state, e.policyRevision, e.labels.join(',')]),
  );
}

export const endpointListCommand = defineApiCommand({
  words: ['endpoint', 'list'],
  summary: 'List endpoints with their identity, enforcement and state',
  async run(ctx) {
    const eps = await ctx.client.call<EndpointView[]>('GET', '/v1/endpoints');
    ctx.print(eps, () => endpointTable(eps));
    return EXIT_OK;
  },
});
