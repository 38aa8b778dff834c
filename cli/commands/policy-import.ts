import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { defineApiCommand, EXIT_OK, UsageError } from '../command-kit.js';

interface ImportResult {
  revision: number;
  acked: boolean;
  policies: string[];
}

export const policyImportCommand = defineApiCommand({
  words: ['policy', 'import'],
  summary: 'Import policy documents (YAML or JSON) as one transaction; prints the new revision',
  args: '<file>... | -',
  help: ['Every document is validated first; nothing is applied when any is invalid.', 'By default waits (bounded) until every Envoy ACKed the revision; `l7mesh policy wait <rev>` waits later.'],
  options: { 'no-wait': { type: 'boolean' } },
  optionHelp: { 'no-wait': 'return once maps are written and the proxy configuration is published' },
  positionals: { min: 1, max: 64 },
  async run(ctx) {
    const texts: string[] = [];
    for (const f of ctx.positionals) {
      try {
        texts.push(f === '-' ? readFileSync(0, 'utf8') : readFileSync(resolve(ctx.io.cwd ?? process.cwd(), f), 'utf8'));
      } catch (e) {
        throw new UsageError(`${f}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
      }
    }
    const text = texts.map((t) => t.replace(/\n?$/, '\n')).join('---\n');
    // The agent answers after the whole transaction; say what it is doing meanwhile.
    if (!ctx.json) ctx.io.stderr(`Importing ${ctx.positionals.join(', ')}: validate, resolve, write BPF maps, publish to Envoy${ctx.values['no-wait'] ? '' : ', wait for its ACK'}...\n`);
    const r = await ctx.client.call<ImportResult>('PUT', '/v1/policies', { text, wait: !ctx.values['no-wait'] });
    ctx.print(r, () => `Revision: ${r.revision}${r.acked ? '' : ' (Envoy ACK pending; `l7mesh policy wait ' + r.revision + '`)'}\nImported: ${r.policies.join(', ')}\n`);
    return EXIT_OK;
  },
});
