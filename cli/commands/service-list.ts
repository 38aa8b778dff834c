import { defineApiCommand, EXIT_OK, table } from '../command-kit.js';

export interface ServiceView {
  name: string;
  id: number;
  spec: { vip: string; port: number; protocol: string; algorithm: string; sessionAffinity: string };
  backends: Array<{ ip: string; port: number; endpoint?: string; state: string; healthy: boolean }>;
  lastError?: string;
}

export function serviceTable(rows: ServiceView[]): string {
  return table(
    ['ID', 'NAME', 'FRONTEND', 'ALGORITHM', 'AFFINITY', 'BACKENDS'],
    rows.map((s) => [
      s.id,
      s.name,
      `${s.spec.vip}:${s.spec.port}/${s.spec.protocol}`,
      s.spec.algorithm,
      s.spec.sessionAffinity,
      s.backends.map((b) => `${b.ip}:${b.port}${b.endpoint ? ` (${b.endpoint})` : ''} ${b.state}`).join(', ') || '(none)',
    ]),
  );
}

export const serviceListCommand = defineApiCommand({
  words: ['service', 'list'],
  summary: 'List services with their backends and backend state',
  async run(ctx) {
    const rows = await ctx.client.call<ServiceView[]>('GET', '/v1/services');
    ctx.print(rows, () => serviceTable(rows));
    return EXIT_OK;
  },
});
