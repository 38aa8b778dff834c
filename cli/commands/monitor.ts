import { defineApiCommand, EXIT_OK } from '../command-kit.js';
import { compactFlow, type FlowView } from '../flow-format.js';
import { flowQuery } from './observe.js';

export const monitorCommand = defineApiCommand({
  words: ['monitor'],
  summary: 'Stream datapath and proxy events live (drops, traces, L7 requests) until Ctrl-C',
  outputs: ['compact'],
  options: { type: { type: 'string', short: 't' }, count: { type: 'string', short: 'c' } },
  optionHelp: { type: 'drop | trace | l7 (default: all)', count: 'stop after this many events' },
  async run(ctx) {
    const extra: Record<string, string> = { follow: 'true', last: '0' };
    if (ctx.values.count !== undefined) extra.max = String(ctx.values.count);
    const ac = new AbortController();
    const stop = () => ac.abort();
    process.once('SIGINT', stop);
    if (!ctx.json) ctx.io.stderr('Listening for events... Press Ctrl-C to quit\n');
    try {
      // The agent's one flow pipeline (observe/): its JSON-lines stream interleaves flows with
      // `lost_events` records when this reader falls behind; those go to stderr, never as flows.
      await ctx.client.stream(
        `/v1/flows${flowQuery({ type: ctx.values.type }, extra)}`,
        (f) => {
          const lost = (f as { lost_events?: { num_events_lost: number } }).lost_events;
          if (lost) ctx.io.stderr(`l7mesh monitor: ${lost.num_events_lost} events lost so far (this reader fell behind the agent)\n`);
          else ctx.io.stdout(ctx.json ? `${JSON.stringify(f)}\n` : compactFlow(f as FlowView));
        },
        ac.signal,
      );
    } finally {
      process.off('SIGINT', stop);
    }
    return EXIT_OK;
  },
});
