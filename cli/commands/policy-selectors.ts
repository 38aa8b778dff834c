import { defineApiCommand, EXIT_OK, table } from '../command-kit.js';

export const policySelectorsCommand = defineApiCommand({
  words: ['policy', 'selectors'],
  summary: 'Dump the selector cache: each selector in use and the identities it selects',
  async run(ctx) {
    const sels = await ctx.client.call<{ selector: string; identities: number[]; users: unknown }[]>('GET', '/v1/policy/selectors');
    ctx.print(sels, () => table(['SELECTOR', 'USERS', 'IDENTITIES'], sels.map((s) => [s.selector, Array.isArray(s.users) ? s.users.length : String(s.users), s.identities.join(' ')])));
    return EXIT_OK;
  },
});
