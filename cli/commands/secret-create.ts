import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { defineApiCommand, EXIT_OK, UsageError, enc, type ApiCommandSpec, type CommandContext } from '../command-kit.js';
import { secretTable, type SecretView } from './secret-list.js';

const options: ApiCommandSpec['options'] = {
  cert: { type: 'string' },
  key: { type: 'string' },
  ca: { type: 'string' },
  'from-file': { type: 'string', multiple: true },
};
const optionHelp = {
  cert: 'certificate (chain) PEM file, stored as tls.crt',
  key: 'private key PEM file (unencrypted), stored as tls.key',
  ca: 'CA bundle PEM file, stored as ca.crt',
  'from-file': 'key=file: any other key a policy names (repeatable)',
};

function servedNote(s: SecretView): string {
  if (s.served === undefined) return '';
  return s.served ? ' (Envoy serves it now)' : ' (stored; Envoy has not acknowledged it yet)';
}

/** `<namespace>/<name>` and the files as a secret's data. */
function request(ctx: CommandContext): { path: string; body: { data: Record<string, string> } } {
  const ref = ctx.positionals[0]!;
  const m = /^([^/]+)\/([^/]+)$/.exec(ref);
  if (!m) throw new UsageError(`"${ref}" is not <namespace>/<name>`);
  const v = ctx.values as Record<string, string | string[] | undefined>;
  const files: [string, string][] = [];
  if (v.cert !== undefined) files.push(['tls.crt', v.cert as string]);
  if (v.key !== undefined) files.push(['tls.key', v.key as string]);
  if (v.ca !== undefined) files.push(['ca.crt', v.ca as string]);
  for (const kv of (v['from-file'] as string[] | undefined) ?? []) {
    const i = kv.indexOf('=');
    if (i <= 0) throw new UsageError(`--from-file: "${kv}" is not key=file`);
    files.push([kv.slice(0, i), kv.slice(i + 1)]);
  }
  if (files.length === 0) throw new UsageError('give --cert and --key, --ca, or --from-file key=file');
  const data: Record<string, string> = {};
  for (const [k, f] of files) {
    if (k in data) throw new UsageError(`key ${k} given twice`);
    try {
      data[k] = readFileSync(resolve(ctx.io.cwd ?? process.cwd(), f), 'utf8');
    } catch (e) {
      throw new UsageError(`${k}: ${f}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
    }
  }
  return { path: `/v1/secrets/${enc(m[1]!)}/${enc(m[2]!)}`, body: { data } };
}

export const secretCreateCommand = defineApiCommand({
  words: ['secret', 'create'],
  summary: 'Store a TLS secret for terminatingTLS/originatingTLS (checked: parses, key matches, not expired)',
  args: '<namespace>/<name>',
  help: [
    'Example: l7mesh secret create default/web-front --cert web.crt --key web.key',
    '         l7mesh secret create default/web-origin --ca origin-ca.crt',
    'Secrets in the store take precedence over files of the same name in --secrets-dir.',
  ],
  options,
  optionHelp,
  positionals: { min: 1, max: 1 },
  async run(ctx) {
    const r = request(ctx);
    const s = await ctx.client.call<SecretView>('POST', r.path, r.body);
    ctx.print(s, () => `Created secret ${s.namespace}/${s.name}${servedNote(s)}\n${secretTable([s])}`);
    return EXIT_OK;
  },
});

export const secretUpdateCommand = defineApiCommand({
  words: ['secret', 'update'],
  summary: 'Replace a stored TLS secret (rotation: new handshakes use it, open connections go on)',
  args: '<namespace>/<name>',
  help: ['A secret that is broken, or that a policy in force could not use, is refused and the last good one stays.'],
  options,
  optionHelp,
  positionals: { min: 1, max: 1 },
  async run(ctx) {
    const r = request(ctx);
    const s = await ctx.client.call<SecretView>('PUT', r.path, r.body);
    ctx.print(s, () => `Updated secret ${s.namespace}/${s.name}${servedNote(s)}\n${secretTable([s])}`);
    return EXIT_OK;
  },
});
