import { defineApiCommand, EXIT_OK, UsageError, enc } from '../command-kit.js';
import type { SecretView } from './secret-list.js';

export const secretDeleteCommand = defineApiCommand({
  words: ['secret', 'delete'],
  summary: 'Delete a TLS secret from the agent\'s store (refused while a policy in force names it)',
  args: '<namespace>/<name>',
  positionals: { min: 1, max: 1 },
  async run(ctx) {
    const ref = ctx.positionals[0]!;
    const m = /^([^/]+)\/([^/]+)$/.exec(ref);
    if (!m) throw new UsageError(`"${ref}" is not <namespace>/<name>`);
    const s = await ctx.client.call<SecretView>('DELETE', `/v1/secrets/${enc(m[1]!)}/${enc(m[2]!)}`);
    ctx.print(s, () => `Deleted secret ${s.namespace}/${s.name}\n`);
    return EXIT_OK;
  },
});
