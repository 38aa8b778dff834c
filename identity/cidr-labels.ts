// Labels of CIDR identities and selectors over them.
//
// Current Cilium (GetCIDRLabels since v1.15) labels a CIDR identity with its own prefix
// and a world label only; older releases listed every enclosing prefix (/0 … /n). We
// follow the current form and match by prefix containment in the selector instead.
// The prefix is written in its canonical text form (IPv6 with colons, which our label
// syntax allows); Cilium's dash spelling of IPv6 (`cidr:2001-db8--/32`) is accepted on input.

import { LabelSet, LabelSource, type Label } from './labels.js';
import { CidrError, formatPrefix, parsePrefix, prefixContains, type IpPrefix } from './cidr.js';
import { Selector, type Requirement } from './selector.js';
import { ReservedLabelName } from './reserved.js';

const WORLD_LABEL: Label = { source: LabelSource.reserved, key: ReservedLabelName.world, value: '' };

export function cidrLabel(prefix: IpPrefix): Label {
  return { source: LabelSource.cidr, key: formatPrefix(prefix), value: '' };
}

/**
 * `cidr:<prefix>` plus reserved:world; a zero-length prefix is the world itself and gets
 * only reserved:world (as Cilium). One world label serves both families (see reserved.ts).
 */
export function cidrLabels(prefix: string | IpPrefix): LabelSet {
  const p = typeof prefix === 'string' ? parsePrefix(prefix) : prefix;
  return new LabelSet(p.bits === 0 ? [WORLD_LABEL] : [cidrLabel(p), WORLD_LABEL]);
}

/** The prefix a CIDR identity's label set names, if it has one. */
export function prefixOfLabels(labels: LabelSet): IpPrefix | undefined {
  const l = labels.labels.find((x) => x.source === LabelSource.cidr);
  if (!l) return undefined;
  try {
    return parsePrefix(l.key);
  } catch {
    return undefined;
  }
}

/**
 * A selector for a toCIDR / fromCIDR / CIDRSet entry: CIDR identities inside `prefix`,
 * minus those inside any `except` prefix. Every except must lie inside the prefix
 * (Cilium's sanitizer rule); the error names it.
 *
 * A zero-length prefix selects the world, as Cilium turns 0.0.0.0/0 into a world label:
 * reserved:world (identity 2 and every CIDR identity) without the other family's CIDR
 * identities. Cilium in dual-stack mode gets the same split from world-ipv4/world-ipv6;
 * here identity 2 stands for unknown addresses of both families (see reserved.ts).
 */
export function cidrSelector(prefix: string, except: readonly string[] = []): Selector {
  const p = parsePrefix(prefix);
  const reqs: Requirement[] = [];
  if (p.bits === 0) {
    reqs.push({ source: LabelSource.reserved, key: ReservedLabelName.world, operator: 'In', values: [''] });
    reqs.push({ source: LabelSource.cidr, key: p.family === 4 ? '::/0' : '0.0.0.0/0', operator: 'DoesNotExist', values: [] });
  } else {
    reqs.push({ source: LabelSource.cidr, key: formatPrefix(p), operator: 'In', values: [''] });
  }
  for (const e of except) {
    const ep = parsePrefix(e);
    if (!prefixContains(p, ep)) throw new CidrError(e, `except prefix is not inside ${formatPrefix(p)}`);
    reqs.push({ source: LabelSource.cidr, key: formatPrefix(ep), operator: 'DoesNotExist', values: [] });
  }
  return new Selector(reqs);
}
