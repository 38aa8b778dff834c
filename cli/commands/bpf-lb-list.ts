import { defineApiCommand, EXIT_OK, table } from '../command-kit.js';

interface LbRow {
  vip: string;
  port: number;
  protocol: string;
  svcId: number;
  service: string;
  algorithm: string;
  activeCount: number;
  maglevTable: boolean;
  backends: Array<{ id: number; ip: string; port: number; state: string }>;
}

export const bpfLbListCommand = defineApiCommand({
  words: ['bpf', 'lb', 'list'],
  summary: 'Show the load-balancing BPF maps: service frontends and their backends',
  async run(ctx) {
    const rows = await ctx.client.call<LbRow[]>('GET', '/v1/bpf/lb');
    ctx.print(rows, () =>
      table(
        ['SERVICE ADDRESS', 'ID', 'NAME', 'ALGORITHM', 'BACKEND ADDRESS (ID) STATE'],
        rows.flatMap((r) => {
          const head = [`${r.vip}:${r.port}/${r.protocol}`, r.svcId, r.service, `${r.algorithm}${r.maglevTable ? ' (table)' : ''}`];
          if (!r.backends.length) return [[...head, '(none)']];
          return r.backends.map((b, i) => [...(i === 0 ? head : ['', '', '', '']), `${b.ip}:${b.port} (${b.id}) ${b.state}`]);
        }),
      ));
    return EXIT_OK;
  },
});
