// How converters name the endpoints of a flow: a numeric identity becomes the endpoint's
// labels, namespace and pod name through the caller's view (the agent's identity
// allocator and endpoint table). Reserved identities need no view.

import { reservedIdentityName } from '../identity/reserved.js';
import type { FlowEndpoint } from './flow-model.js';

export type IdentityResolver = (identity: number, ip?: string) => FlowEndpoint | undefined;

/** The endpoint for an identity: the resolver's answer, else reserved labels, else the bare id. */
export function resolveEndpoint(resolve: IdentityResolver | undefined, identity: number, ip?: string): FlowEndpoint {
  const known = resolve?.(identity, ip);
  if (known) return known;
  const reserved = reservedIdentityName(identity);
  if (reserved !== undefined) return { identity, labels: [`reserved:${reserved}`] };
  return { identity, labels: [] };
}
