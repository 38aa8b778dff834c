import { defineApiCommand, enc, EXIT_OK } from '../command-kit.js';
import { endpointTable, type EndpointView } from './endpoint-list.js';

export const endpointGetCommand = defineApiCommand({
  words: ['endpoint', 'get'],
  summary: 'Show one endpoint (by id or name)',
  args: '<endpoint>',
  positionals: { min: 1, max: 1 },
  async run(ctx) {
    const e = await ctx.client.call<EndpointView>('GET', `/v1/endpoints/${enc(ctx.positionals[0]!)}`);
    ctx.print(e, () => endpointTable([e]) + (e.netns ? `netns ${e.netns}, cgroup ${e.cgroupPath}\n` : '') + (e.lastError ? `last error: ${e.lastError}\n` : ''));
    return EXIT_OK;
  },
});
