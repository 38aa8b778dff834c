import { defineApiCommand, enc, EXIT_OK, UsageError } from '../command-kit.js';
import { endpointTable, type EndpointView } from './endpoint-list.js';

export const endpointLabelsCommand = defineApiCommand({
  words: ['endpoint', 'labels'],
  summary: 'Add or delete labels of an endpoint (it moves to the identity of its new labels)',
  args: '<endpoint>',
  options: { add: { type: 'string', short: 'a', multiple: true }, delete: { type: 'string', short: 'd', multiple: true } },
  optionHelp: { add: 'label to add, key=value (repeatable)', delete: 'label to delete, key=value (repeatable)' },
  positionals: { min: 1, max: 1 },
  async run(ctx) {
    const add = (ctx.values.add as string[] | undefined) ?? [];
    const del = (ctx.values.delete as string[] | undefined) ?? [];
    if (add.length === 0 && del.length === 0) {
      const e = await ctx.client.call<EndpointView>('GET', `/v1/endpoints/${enc(ctx.positionals[0]!)}`);
      ctx.print(e.labels, () => `${e.labels.join('\n')}\n`);
      return EXIT_OK;
    }
    if ([...add, ...del].some((l) => l.trim() === '')) throw new UsageError('--add/--delete: empty label');
    const e = await ctx.client.call<EndpointView>('PATCH', `/v1/endpoints/${enc(ctx.positionals[0]!)}/labels`, { add, delete: del });
    ctx.print(e, () => endpointTable([e]));
    return EXIT_OK;
  },
});
