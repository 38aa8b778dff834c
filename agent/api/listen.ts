// Puts the API on its listeners: the unix socket (directory 0700, socket 0600: root
// only, as Cilium's) and optionally loopback TCP with the bearer token.

import { chmodSync, mkdirSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Agent } from '../agent.js';
import type { AgentConfig } from '../config.js';
import { buildApi, type ApiOptions } from './server.js';

export interface Listeners {
  apps: FastifyInstance[];
  tcpAddress?: string;
  close(): Promise<void>;
}

export function listenApi(agent: Agent): Promise<Listeners> {
  return listenApps(agent.config, (opts) => buildApi(agent, opts));
}

/** The listeners of `c` (socket, TCP) each with an app from `build` (the TCP one with the token). */
export async function listenApps(c: AgentConfig, build: (opts: ApiOptions) => Promise<FastifyInstance>): Promise<Listeners> {
  const apps: FastifyInstance[] = [];
  let tcpAddress: string | undefined;
  try {
    if (c.socketPath) {
      mkdirSync(dirname(c.socketPath), { recursive: true, mode: 0o700 });
      // A socket file left by a killed agent would make listen fail with EADDRINUSE.
      rmSync(c.socketPath, { force: true });
      const app = await build({});
      await app.listen({ path: c.socketPath });
      chmodSync(c.socketPath, 0o600);
      apps.push(app);
    }
    if (c.apiTcpPort !== undefined) {
      const app = await build({ token: c.apiToken });
      tcpAddress = await app.listen({ host: '127.0.0.1', port: c.apiTcpPort });
      apps.push(app);
    }
  } catch (e) {
    await Promise.all(apps.map((a) => a.close()));
    throw e;
  }
  return {
    apps,
    tcpAddress,
    async close() {
      await Promise.all(apps.map((a) => a.close()));
      if (c.socketPath) rmSync(c.socketPath, { force: true });
    },
  };
}
