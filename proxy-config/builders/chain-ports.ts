// Which filter-chain ports an HTTP redirect entry is enforced on. A single port has its own
// chain; ranges and "every port" share the port-0 chain, except a range that requires
// authentication: each of its ports gets a chain of its own (the authenticated hop is per
// port), and so must every other peer's chain on those ports, because Envoy narrows to the
// most specific destination port before it looks at source addresses.

import { ANY_PORT, type PolicyEntry } from '../../policy/resolved.js';
import { MAX_AUTH_RANGE_PORTS } from '../../policy/rule.js';

export function chainPortsOf(e: PolicyEntry): number[] {
  if (e.port === ANY_PORT) return [0];
  if (e.port === e.endPort) return [e.port];
  if (e.l7?.parser === 'http' && e.l7.auth && e.endPort - e.port + 1 <= MAX_AUTH_RANGE_PORTS) {
    const out: number[] = [];
    for (let p = e.port; p <= e.endPort; p++) out.push(p);
    return out;
  }
  return [0];
}
