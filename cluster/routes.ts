// Routes to other nodes' pod CIDRs, installed in this node's network namespace (the one
// the agent runs in): `<podCidr> via <node address>`, replaced when a node moves and
// removed when its record goes.

import { ip } from '../agent/endpoint/ip-command.js';

export interface RouteTable {
  replace(cidr: string, via: string): Promise<void>;
  remove(cidr: string): Promise<void>;
}

export class KernelRoutes implements RouteTable {
  async replace(cidr: string, via: string): Promise<void> {
    await ip(['route', 'replace', cidr, 'via', via]);
  }

  async remove(cidr: string): Promise<void> {
    await ip(['route', 'del', cidr]).catch((e: Error) => {
      if (!/No such process|not found/i.test(e.message)) throw e;
    });
  }
}

/** Records routes only (unit tests, `--datapath fake`). */
export class MemoryRoutes implements RouteTable {
  readonly routes = new Map<string, string>();
  async replace(cidr: string, via: string): Promise<void> {
    this.routes.set(cidr, via);
  }
  async remove(cidr: string): Promise<void> {
    this.routes.delete(cidr);
  }
}

