import { defineApiCommand, enc, EXIT_OK } from '../command-kit.js';
import type { EndpointView } from './endpoint-list.js';

export const endpointDeleteCommand = defineApiCommand({
  words: ['endpoint', 'delete'],
  summary: 'Delete an endpoint and its namespace, veth and cgroup',
  args: '<endpoint>',
  positionals: { min: 1, max: 1 },
  async run(ctx) {
    const e = await ctx.client.call<EndpointView>('DELETE', `/v1/endpoints/${enc(ctx.positionals[0]!)}`);
    ctx.print(e, () => `Endpoint ${e.id} (${e.name}) deleted\n`);
    return EXIT_OK;
  },
});
