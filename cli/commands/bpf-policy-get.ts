import { defineApiCommand, enc, EXIT_OK, table } from '../command-kit.js';

interface Row {
  direction: string;
  identity: number;
  port: number;
  protocol: string;
  verdict: string;
}

export const bpfPolicyGetCommand = defineApiCommand({
  words: ['bpf', 'policy', 'get'],
  summary: "Show an endpoint's policy map as the kernel holds it",
  args: '<endpoint>',
  positionals: { min: 1, max: 1 },
  async run(ctx) {
    const r = await ctx.client.call<{ endpoint: number; datapath: string; entries: Row[] }>('GET', `/v1/bpf/policy/${enc(ctx.positionals[0]!)}`);
    ctx.print(r, () =>
      `Endpoint ${r.endpoint} (${r.datapath} datapath)\n` +
      table(['DIRECTION', 'IDENTITY', 'PORT/PROTO', 'VERDICT'], r.entries.map((e) => [e.direction, e.identity === 0 ? 'ANY' : e.identity, `${e.port === 0 ? 'ANY' : e.port}/${e.protocol}`, e.verdict])),
    );
    return EXIT_OK;
  },
});
