import { stringify } from 'yaml';
import { defineApiCommand, enc, EXIT_OK } from '../command-kit.js';

interface PolicyView {
  key: string;
  kind: string;
  revision: number;
  spec: unknown;
}

export const policyGetCommand = defineApiCommand({
  words: ['policy', 'get'],
  summary: 'Show imported policy documents (all, or one by name)',
  args: '[name]',
  positionals: { min: 0, max: 1 },
  async run(ctx) {
    if (ctx.positionals[0]) {
      const p = await ctx.client.call<PolicyView>('GET', `/v1/policies/${enc(ctx.positionals[0])}`);
      ctx.print(p, () => `# ${p.key} (imported at revision ${p.revision})\n${stringify(p.spec)}`);
      return EXIT_OK;
    }
    const all = await ctx.client.call<{ revision: number; policies: PolicyView[] }>('GET', '/v1/policies');
    ctx.print(all, () => `${all.policies.map((p) => `# ${p.key} (imported at revision ${p.revision})\n${stringify(p.spec)}`).join('---\n')}Revision: ${all.revision}\n`);
    return EXIT_OK;
  },
});
