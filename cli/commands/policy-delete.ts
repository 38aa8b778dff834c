import { defineApiCommand, enc, EXIT_OK, UsageError } from '../command-kit.js';

export const policyDeleteCommand = defineApiCommand({
  words: ['policy', 'delete'],
  summary: 'Delete a policy document (or every one with --all) as one transaction',
  args: '<name> | --all',
  options: { all: { type: 'boolean' } },
  optionHelp: { all: 'delete every imported policy' },
  positionals: { min: 0, max: 1 },
  async run(ctx) {
    const name = ctx.positionals[0];
    if (!name && !ctx.values.all) throw new UsageError('name the policy to delete, or pass --all');
    if (name && ctx.values.all) throw new UsageError('give either a name or --all, not both');
    const r = await ctx.client.call<{ revision: number; deleted: string[] }>('DELETE', `/v1/policies/${enc(name ?? '--all')}`);
    ctx.print(r, () => `Revision: ${r.revision}\nDeleted: ${r.deleted.join(', ') || '(nothing)'}\n`);
    return EXIT_OK;
  },
});
