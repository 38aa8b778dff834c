import { stringify } from 'yaml';
import { defineApiCommand, EXIT_OK } from '../command-kit.js';

export const debuginfoCommand = defineApiCommand({
  words: ['debuginfo'],
  summary: 'Dump everything the agent knows (status, endpoints, policies, maps, selectors) for a bug report',
  async run(ctx) {
    const d = await ctx.client.call<unknown>('GET', '/v1/debuginfo');
    ctx.print(d, () => stringify(d));
    return EXIT_OK;
  },
});
