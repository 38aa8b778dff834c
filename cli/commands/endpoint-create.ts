import { defineApiCommand, EXIT_OK, UsageError } from '../command-kit.js';
import { endpointTable, type EndpointView } from './endpoint-list.js';

export const endpointCreateCommand = defineApiCommand({
  words: ['endpoint', 'create'],
  summary: 'Create an endpoint (pod): network namespace, veth, cgroup, address and identity',
  args: '<name>',
  help: ['Example: l7mesh endpoint create web-server --labels app=web-server,tier=backend', 'Run a process in it: ip netns exec <netns> ... after joining its cgroup (see endpoint get).'],
  options: { labels: { type: 'string', short: 'l', multiple: true } },
  optionHelp: { labels: 'comma-separated labels, [source:]key=value (repeatable; default source k8s)' },
  positionals: { min: 1, max: 1 },
  async run(ctx) {
    const raw = (ctx.values.labels as string[] | undefined) ?? [];
    const labels = raw.flatMap((l) => l.split(',')).map((l) => l.trim()).filter(Boolean);
    if (labels.length === 0) throw new UsageError('--labels: at least one label is needed (an endpoint without labels has no identity to select)');
    const e = await ctx.client.call<EndpointView>('POST', '/v1/endpoints', { name: ctx.positionals[0], labels });
    ctx.print(e, () => endpointTable([e]));
    return EXIT_OK;
  },
});
