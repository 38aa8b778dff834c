// Runs the real Envoy binary (path from .tools/envoy-path) inside a given cgroup
// (the proxy cgroup, so the datapath's getsockopt hook answers its SO_ORIGINAL_DST)
// and waits until its admin endpoint reports ready.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../support/paths.js';

export function envoyBinary(): string {
  const f = join(repoRoot, '.tools/envoy-path');
  if (!existsSync(f)) throw new Error('Envoy binary path missing (.tools/envoy-path): run scripts/setup.sh');
  return readFileSync(f, 'utf8').trim();
}

/**
 * A static Envoy: one listener on `listen` with the original_dst listener filter, an
 * original-destination cluster, and either plain TCP proxying or HTTP with an RBAC
 * filter that allows only paths starting with `allowPrefix`.
 */
export function buildEnvoyConfig(opts: { listenIp: string; listenPort: number; mode: 'tcp' | 'http'; allowPrefix?: string }): object {
  const network = opts.mode === 'tcp'
    ? {
      name: 'envoy.filters.network.tcp_proxy',
      typed_config: {
        '@type': 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy',
        stat_prefix: 'l7m_tcp',
        cluster: 'original_dst',
      },
    }
    : {
      name: 'envoy.filters.network.http_connection_manager',
      typed_config: {
        '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
        stat_prefix: 'l7m_http',
        route_config: {
          virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'original_dst' } }] }],
        },
        http_filters: [
          ...(opts.allowPrefix
            ? [{
              name: 'envoy.filters.http.rbac',
              typed_config: {
                '@type': 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC',
                rules: {
                  action: 'ALLOW',
                  policies: {
                    allowed: {
                      permissions: [{ url_path: { path: { prefix: opts.allowPrefix } } }],
                      principals: [{ any: true }],
                    },
                  },
                },
              },
            }]
            : []),
          { name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } },
        ],
      },
    };
  return {
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } },
    static_resources: {
      listeners: [{
        name: 'l7m_redirect',
        address: { socket_address: { address: opts.listenIp, port_value: opts.listenPort } },
        listener_filters: [{
          name: 'envoy.filters.listener.original_dst',
          typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.listener.original_dst.v3.OriginalDst' },
        }],
        filter_chains: [{ filters: [network] }],
      }],
      clusters: [{ name: 'original_dst', type: 'ORIGINAL_DST', lb_policy: 'CLUSTER_PROVIDED', connect_timeout: '2s' }],
    },
  };
}

export interface EnvoyProc { child: ChildProcess; adminPort: number; dir: string; stop(): void }

function httpGet(port: number, path: string): Promise<number> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path, timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', () => resolve(0));
    req.on('timeout', () => {
      req.destroy();
      resolve(0);
    });
    req.end();
  });
}

/** Starts Envoy in `cgroupDir` (empty string: the caller's cgroup). */
export async function startEnvoy(config: object, cgroupDir: string, timeoutMs = 20_000): Promise<EnvoyProc> {
  const dir = mkdtempSync(join(tmpdir(), 'l7mesh-test-envoy-'));
  const cfgPath = join(dir, 'envoy.json');
  const adminPath = join(dir, 'admin-address');
  writeFileSync(cfgPath, JSON.stringify(config));
  const argv = [envoyBinary(), '-c', cfgPath, '--use-dynamic-base-id', '--admin-address-path', adminPath,
    '--log-level', 'warn', '--concurrency', '1', '--disable-hot-restart'];
  const script = cgroupDir ? 'echo $$ > "$0/cgroup.procs" && exec "$@"' : 'exec "$@"';
  const child = spawn('bash', ['-c', script, cgroupDir || '-', ...argv], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const stop = () => {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) break;
    if (existsSync(adminPath)) {
      const port = Number(readFileSync(adminPath, 'utf8').trim().split(':').pop());
      if (port && (await httpGet(port, '/ready')) === 200) return { child, adminPort: port, dir, stop };
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  stop();
  throw new Error(`Envoy did not become ready (exit ${child.exitCode}): ${stderr}`);
}
