import { defineApiCommand, EXIT_OK, table } from '../command-kit.js';

export interface SecretView {
  namespace: string;
  name: string;
  updatedAt: string;
  keys: Array<{ key: string; kind: string; subject?: string; dnsNames?: string[]; notAfter?: string; certificates?: number }>;
  usedBy: string[];
  served?: boolean;
}

export function secretTable(rows: SecretView[]): string {
  return table(
    ['SECRET', 'KEYS', 'EXPIRES', 'UPDATED', 'USED BY'],
    rows.map((s) => [
      `${s.namespace}/${s.name}`,
      s.keys.map((k) => `${k.key}${k.kind === 'private-key' ? ' (key)' : k.dnsNames?.length ? ` (${k.dnsNames.join(',')})` : ''}`).join(', '),
      s.keys
        .filter((k) => k.notAfter)
        .map((k) => `${k.key} ${k.notAfter}`)
        .join(', '),
      s.updatedAt,
      s.usedBy.length ? s.usedBy.join('; ') : '-',
    ]),
  );
}

export const secretListCommand = defineApiCommand({
  words: ['secret', 'list'],
  summary: 'List TLS secrets in the agent\'s store (keys and expiries, never key material)',
  async run(ctx) {
    const rows = await ctx.client.call<SecretView[]>('GET', '/v1/secrets');
    ctx.print(rows, () => (rows.length ? secretTable(rows) : 'No secrets in the agent\'s store.\n'));
    return EXIT_OK;
  },
});
