import { defineApiCommand, enc, EXIT_OK } from '../command-kit.js';
import { identityTable, type IdentityView } from './identity-list.js';

export const identityGetCommand = defineApiCommand({
  words: ['identity', 'get'],
  summary: 'Show one identity',
  args: '<id>',
  positionals: { min: 1, max: 1 },
  async run(ctx) {
    const i = await ctx.client.call<IdentityView>('GET', `/v1/identities/${enc(ctx.positionals[0]!)}`);
    ctx.print(i, () => identityTable([i]));
    return EXIT_OK;
  },
});
