import { defineApiCommand, EXIT_OK, table } from '../command-kit.js';

export const bpfIpcacheListCommand = defineApiCommand({
  words: ['bpf', 'ipcache', 'list'],
  summary: 'Show the ipcache BPF map: address → identity',
  async run(ctx) {
    const rows = await ctx.client.call<{ ip: string; identity: number }[]>('GET', '/v1/bpf/ipcache');
    ctx.print(rows, () => table(['IP PREFIX/ADDRESS', 'IDENTITY'], rows.map((r) => [r.ip, r.identity])));
    return EXIT_OK;
  },
});
