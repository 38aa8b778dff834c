import { defineApiCommand, EXIT_OK, table } from '../command-kit.js';

export interface IdentityView {
  id: number;
  labels: string[];
  reserved: boolean;
  refs: number;
}

export function identityTable(ids: IdentityView[]): string {
  return table(['ID', 'LABELS', 'REFS'], ids.map((i) => [i.id, i.labels.join(','), i.reserved ? 'reserved' : i.refs]));
}

export const identityListCommand = defineApiCommand({
  words: ['identity', 'list'],
  summary: 'List identities: reserved and allocated, with their labels',
  async run(ctx) {
    const ids = await ctx.client.call<IdentityView[]>('GET', '/v1/identities');
    ctx.print(ids, () => identityTable(ids));
    return EXIT_OK;
  },
});
