import { defineApiCommand, EXIT_OK, UsageError } from '../command-kit.js';

export const policyWaitCommand = defineApiCommand({
  words: ['policy', 'wait'],
  summary: 'Wait until a policy revision is in every BPF map and ACKed by every Envoy',
  args: '<revision>',
  options: { timeout: { type: 'string', short: 't' } },
  optionHelp: { timeout: 'seconds to wait (default 30); exit code 4 on timeout' },
  positionals: { min: 1, max: 1 },
  async run(ctx) {
    const rev = ctx.positionals[0]!;
    if (!/^\d+$/.test(rev)) throw new UsageError(`revision: "${rev}" is not a number`);
    const t = Number((ctx.values.timeout as string | undefined) ?? '30');
    if (!(t > 0 && t <= 600)) throw new UsageError(`--timeout: "${ctx.values.timeout}" must be seconds in (0, 600]`);
    if (!ctx.json) ctx.io.stderr(`Waiting for revision ${rev} (up to ${t}s)...\n`);
    const r = await ctx.client.call<{ revision: number; datapath: boolean; proxyAcked: boolean }>('POST', '/v1/policy/wait', { revision: Number(rev), timeoutMs: Math.round(t * 1000) }, t * 1000 + 5000);
    ctx.print(r, () => `Revision ${r.revision}: BPF maps updated, every Envoy ACKed\n`);
    return EXIT_OK;
  },
});
