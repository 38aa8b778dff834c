import { defineApiCommand, EXIT_FAILED, EXIT_OK } from '../command-kit.js';
import type { StartupStatus } from '../../agent/api/startup.js';

interface Status {
  node: string;
  uptimeSeconds: number;
  config: { enforcementMode: string; allowLocalhost: boolean; policyAuditMode: boolean; stateDir: string };
  policy: { revision: number; ackedRevision: number; policies: number; lastNack?: string };
  endpoints: { total: number; byState: Record<string, number> };
  identities: number;
  store?: { kind: string; reachable: boolean; store: string; lastError?: string; lastContact?: string; nodes?: string[]; remoteEndpoints?: number };
  datapath: { kind: string; ready: boolean; message: string; maps: { name: string; entries: number; capacity: number }[] };
  proxy: { kind: string; envoy: { state: string; pid?: number; restarts: number; message?: string }; xds: { address?: string; version?: string; clients: { node: string; types: { typeUrl: string; ackedVersion?: string; nack?: string }[] }[] }; tls?: { trustDomain: string; caNotAfter: string; caSerial?: string; previousCa?: { serial: string; retiresAt: string }; trustBundle?: string[]; identityCertificates: { identity: number; error?: string }[]; secrets: string[] } };
  flows: { buffered: number; total: number };
}

export const statusCommand = defineApiCommand({
  words: ['status'],
  summary: 'Show the agent: datapath, Envoy, xDS, policy revision, endpoints',
  options: { verbose: { type: 'boolean', short: 'v' } },
  optionHelp: { verbose: 'also list BPF maps and xDS clients' },
  async run(ctx) {
    const got = await ctx.client.call<Status | StartupStatus>('GET', '/v1/status');
    if ('phase' in got) {
      // Cluster mode before the agent is ready (waiting for its store): shown, and not a success.
      ctx.print(got, () => startupLines(got));
      return EXIT_FAILED;
    }
    const s = got;
    ctx.print(s, () => {
      const lines = [
        `Node:            ${s.node} (up ${s.uptimeSeconds}s)`,
        `Datapath:        ${s.datapath.kind} ${s.datapath.ready ? 'Ok' : 'NOT READY'}   ${s.datapath.message}`,
        `Envoy:           ${s.proxy.kind} ${s.proxy.envoy.state}${s.proxy.envoy.pid ? ` (pid ${s.proxy.envoy.pid})` : ''}, ${s.proxy.envoy.restarts} restarts${s.proxy.envoy.message ? `   ${s.proxy.envoy.message}` : ''}`,
        `xDS:             ${s.proxy.xds.address ?? '-'}  version ${s.proxy.xds.version ?? '-'}, ${s.proxy.xds.clients.length} client(s)`,
        ...(s.proxy.tls
          ? [
              `TLS:             trust domain ${s.proxy.tls.trustDomain}, CA valid until ${s.proxy.tls.caNotAfter}, ${s.proxy.tls.identityCertificates.length} identity certificate(s)${s.proxy.tls.identityCertificates.some((c) => c.error) ? ' (SOME FAILING)' : ''}, ${s.proxy.tls.secrets.length} secret(s) over SDS`,
              ...(s.proxy.tls.trustBundle
                ? [
                    `Trust bundle:    ${s.proxy.tls.trustBundle.length} CA(s); signing CA ${s.proxy.tls.caSerial ?? '-'}${s.proxy.tls.previousCa ? `, previous CA ${s.proxy.tls.previousCa.serial} trusted until ${s.proxy.tls.previousCa.retiresAt}` : ''}`,
                  ]
                : []),
            ]
          : []),
        `Policy:          revision ${s.policy.revision} (Envoy ACKed ${s.policy.ackedRevision}), ${s.policy.policies} document(s)${s.policy.lastNack ? `; last NACK: ${s.policy.lastNack}` : ''}`,
        `Enforcement:     ${s.config.enforcementMode}, allow-localhost ${s.config.allowLocalhost ? 'on' : 'off'}, audit mode ${s.config.policyAuditMode ? 'on' : 'off'}`,
        `Endpoints:       ${s.endpoints.total} (${Object.entries(s.endpoints.byState).map(([k, v]) => `${v} ${k}`).join(', ') || 'none'})`,
        `Identities:      ${s.identities}`,
        ...(s.store && s.store.kind !== 'embedded'
          ? [
              `Store:           ${s.store.store} ${s.store.reachable ? 'Ok' : `UNREACHABLE since ${s.store.lastContact ?? '?'} (enforcing the last known state)${s.store.lastError ? `: ${s.store.lastError}` : ''}`}` +
                (s.store.nodes ? `, ${s.store.nodes.length} other node(s), ${s.store.remoteEndpoints ?? 0} remote endpoint(s)` : ''),
            ]
          : []),
        `Flows:           ${s.flows.buffered} buffered, ${s.flows.total} seen`,
      ];
      if (ctx.values.verbose) {
        lines.push('', 'BPF maps:');
        for (const m of s.datapath.maps) lines.push(`  ${m.name.padEnd(22)} ${m.entries}/${m.capacity}`);
        lines.push('', 'xDS clients:');
        for (const c of s.proxy.xds.clients) {
          lines.push(`  ${c.node}`);
          for (const t of c.types) lines.push(`    ${t.typeUrl.split('.').pop()!.padEnd(22)} acked ${t.ackedVersion ?? '-'}${t.nack ? `  NACK: ${t.nack}` : ''}`);
        }
      }
      return `${lines.join('\n')}\n`;
    });
    return EXIT_OK;
  },
});

function startupLines(s: StartupStatus): string {
  const st = s.store;
  const store =
    st.state === 'connecting'
      ? `${st.store} CONNECTING (attempt ${st.attempt}${st.step ? ` to ${st.step}` : ''} since ${st.since}${st.lastError ? `, last error: ${st.lastError}` : ''}${st.nextAttemptAt ? `; next attempt at ${st.nextAttemptAt}` : ''})`
      : `${st.store} Ok (answered at attempt ${st.attempt})`;
  return [
    `Node:            ${s.node} (up ${s.uptimeSeconds}s)`,
    `Agent:           NOT READY: ${s.phase === 'waiting-for-store' ? 'waiting for the store' : 'starting'}`,
    `Store:           ${store}`,
    `                 ${s.message}`,
  ].join('\n') + '\n';
}
