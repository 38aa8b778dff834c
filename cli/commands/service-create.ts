import { defineApiCommand, EXIT_OK, UsageError } from '../command-kit.js';
import { serviceTable, type ServiceView } from './service-list.js';

/** A number when the flag is one, else the raw text, so the agent names the field it refuses. */
const num = (v: unknown): unknown => (typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v);

export const serviceCreateCommand = defineApiCommand({
  words: ['service', 'create'],
  summary: 'Create a service: a virtual IP:port the socket layer translates to a backend',
  args: '<name>',
  help: [
    'Example: l7mesh service create web --vip 10.96.0.10 --port 80 --target-port 8080 --selector app=web --algorithm maglev',
    '         l7mesh service create dns --vip 10.96.0.53 --port 53 --protocol udp --backend 10.200.0.5:5353 --backend 10.200.0.6:5353',
  ],
  options: {
    vip: { type: 'string' },
    port: { type: 'string' },
    protocol: { type: 'string' },
    'target-port': { type: 'string' },
    selector: { type: 'string', multiple: true },
    backend: { type: 'string', multiple: true },
    algorithm: { type: 'string' },
    'session-affinity': { type: 'string' },
    'affinity-timeout': { type: 'string' },
    'health-check-interval': { type: 'string' },
  },
  optionHelp: {
    vip: 'virtual IPv4 address',
    port: 'service port',
    protocol: 'tcp (default) or udp',
    'target-port': 'backend port (default: the service port)',
    selector: 'key=value labels; endpoints matching all of them are backends (repeatable, comma-separated)',
    backend: 'explicit backend ip[:port] (repeatable)',
    algorithm: 'random (default) or maglev',
    'session-affinity': 'None (default) or ClientIP',
    'affinity-timeout': 'ClientIP affinity lifetime in seconds (default 10800)',
    'health-check-interval': 'probe backends over TCP every N ms and drain the failing ones',
  },
  positionals: { min: 1, max: 1 },
  async run(ctx) {
    const v = ctx.values as Record<string, unknown>;
    const body: Record<string, unknown> = { name: ctx.positionals[0], vip: v.vip, port: num(v.port) };
    if (v.protocol !== undefined) body.protocol = v.protocol;
    if (v['target-port'] !== undefined) body.targetPort = num(v['target-port']);
    if (v.algorithm !== undefined) body.algorithm = v.algorithm;
    if (v['session-affinity'] !== undefined) body.sessionAffinity = v['session-affinity'];
    if (v['affinity-timeout'] !== undefined) body.affinityTimeoutSeconds = num(v['affinity-timeout']);
    if (v['health-check-interval'] !== undefined) body.healthCheck = { intervalMs: num(v['health-check-interval']) };
    const sel = ((v.selector as string[] | undefined) ?? []).flatMap((s) => s.split(',')).map((s) => s.trim()).filter(Boolean);
    if (sel.length) {
      const matchLabels: Record<string, string> = {};
      for (const s of sel) {
        const i = s.indexOf('=');
        if (i <= 0) throw new UsageError(`--selector: "${s}" is not key=value`);
        matchLabels[s.slice(0, i)] = s.slice(i + 1);
      }
      body.selector = { matchLabels };
    }
    const backends = (v.backend as string[] | undefined) ?? [];
    if (backends.length) {
      body.backends = backends.map((b) => {
        const [ip, port] = b.split(':');
        return port === undefined ? { ip } : { ip, port: num(port) };
      });
    }
    const s = await ctx.client.call<ServiceView>('POST', '/v1/services', body);
    ctx.print(s, () => serviceTable([s]));
    return EXIT_OK;
  },
});
