import { defineApiCommand, EXIT_OK } from '../command-kit.js';
import type { ServiceView } from './service-list.js';

export const serviceDeleteCommand = defineApiCommand({
  words: ['service', 'delete'],
  summary: 'Delete a service (open connections keep their backend)',
  args: '<name>',
  positionals: { min: 1, max: 1 },
  async run(ctx) {
    const s = await ctx.client.call<ServiceView>('DELETE', `/v1/services/${encodeURIComponent(ctx.positionals[0]!)}`);
    ctx.print(s, () => `Deleted service ${s.name} (${s.spec.vip}:${s.spec.port}/${s.spec.protocol})\n`);
    return EXIT_OK;
  },
});
