import { defineApiCommand, EXIT_OK } from '../command-kit.js';

interface Rotation {
  previousSerial: string;
  serial: string;
  notAfter: string;
  previousRetiresAt: string;
}

export const caRotateCommand = defineApiCommand({
  words: ['ca', 'rotate'],
  summary: 'Rotate the node CA now: re-issue every identity certificate from a new CA, trust the old one until its last certificate expires',
  async run(ctx) {
    const r = await ctx.client.call<Rotation>('POST', '/v1/ca/rotate');
    ctx.print(r, () => `CA rotated: serial ${r.previousSerial} -> ${r.serial} (valid until ${r.notAfter})\nPrevious CA trusted until ${r.previousRetiresAt}\n`);
    return EXIT_OK;
  },
});
