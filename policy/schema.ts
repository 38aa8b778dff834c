// JSON schemas of the three policy kinds, checked with ajv in strict mode. Unknown fields
// are rejected (additionalProperties: false). Fields Cilium has but l7mesh does not
// enforce yet are listed with an open schema so that the semantic pass (parse.ts) can
// reject them with "not supported: <field>" instead of a vaguer "unknown field".

import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';

const ANY = {};

const labelSelector = {
  type: 'object',
  additionalProperties: false,
  properties: {
    matchLabels: { type: 'object', additionalProperties: { type: 'string' } },
    matchExpressions: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['key', 'operator'],
        properties: {
          key: { type: 'string', minLength: 1 },
          operator: { enum: ['In', 'NotIn', 'Exists', 'DoesNotExist'] },
          values: { type: 'array', items: { type: 'string' } },
        },
      },
    },
  },
};

const cidrRule = {
  type: 'object',
  additionalProperties: false,
  properties: {
    cidr: { type: 'string' },
    except: { type: 'array', items: { type: 'string' } },
    cidrGroupRef: ANY,
    cidrGroupSelector: ANY,
  },
};

const portProtocol = {
  type: 'object',
  additionalProperties: false,
  required: ['port'],
  properties: {
    port: { type: ['string', 'integer'] },
    endPort: { type: 'integer' },
    protocol: { type: 'string' },
  },
};

const httpRule = {
  type: 'object',
  additionalProperties: false,
  properties: {
    method: { type: 'string' },
    path: { type: 'string' },
    host: { type: 'string' },
    headers: { type: 'array', items: { type: 'string' } },
    headerMatches: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        properties: {
          name: { type: 'string' },
          value: { type: 'string' },
          mismatch: { type: 'string' },
          secret: ANY,
        },
      },
    },
  },
};

const kafkaRule = {
  type: 'object',
  additionalProperties: false,
  properties: {
    role: { type: 'string' },
    apiKey: { type: 'string' },
    apiVersion: { type: ['string', 'integer'] },
    clientID: { type: 'string' },
    topic: { type: 'string' },
  },
};

const l7Rules = {
  type: 'object',
  additionalProperties: false,
  properties: {
    http: { type: 'array', items: httpRule },
    kafka: { type: 'array', items: kafkaRule },
    dns: ANY,
    l7proto: ANY,
    l7: ANY,
  },
};

const portRule = {
  type: 'object',
  additionalProperties: false,
  properties: {
    ports: { type: 'array', items: { $ref: '#/$defs/portProtocol' } },
    rules: l7Rules,
    listener: ANY,
    originatingTLS: ANY,
    terminatingTLS: ANY,
    serverNames: ANY,
  },
};

// Deny sections take ports only; `rules` is admitted here so the semantic pass can say
// precisely that L7 rules are not allowed in a deny rule.
const portDenyRule = {
  type: 'object',
  additionalProperties: false,
  properties: {
    ports: { type: 'array', items: { $ref: '#/$defs/portProtocol' } },
    rules: ANY,
  },
};

function peerRule(dir: 'from' | 'to', deny: boolean): object {
  const p: Record<string, unknown> = {
    [`${dir}Endpoints`]: { type: 'array', items: { $ref: '#/$defs/labelSelector' } },
    [`${dir}CIDR`]: { type: 'array', items: { type: 'string' } },
    [`${dir}CIDRSet`]: { type: 'array', items: { $ref: '#/$defs/cidrRule' } },
    [`${dir}Entities`]: { type: 'array', items: { type: 'string' } },
    [`${dir}Requires`]: ANY,
    [`${dir}Groups`]: ANY,
    [`${dir}Nodes`]: ANY,
    toPorts: { type: 'array', items: { $ref: deny ? '#/$defs/portDenyRule' : '#/$defs/portRule' } },
    icmps: ANY,
    authentication: ANY,
  };
  if (dir === 'to') {
    p.toServices = ANY;
    p.toFQDNs = ANY;
  }
  return { type: 'object', additionalProperties: false, properties: p };
}

const ciliumRule = {
  type: 'object',
  additionalProperties: false,
  properties: {
    endpointSelector: { $ref: '#/$defs/labelSelector' },
    nodeSelector: ANY,
    ingress: { type: 'array', items: { $ref: '#/$defs/ingressRule' } },
    ingressDeny: { type: 'array', items: { $ref: '#/$defs/ingressDenyRule' } },
    egress: { type: 'array', items: { $ref: '#/$defs/egressRule' } },
    egressDeny: { type: 'array', items: { $ref: '#/$defs/egressDenyRule' } },
    labels: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['key'],
        properties: { key: { type: 'string' }, value: { type: 'string' }, source: { type: 'string' } },
      },
    },
    description: { type: 'string' },
    enableDefaultDeny: {
      type: 'object',
      additionalProperties: false,
      properties: { ingress: { type: 'boolean' }, egress: { type: 'boolean' } },
    },
    log: ANY,
  },
};

const metadata = {
  type: 'object',
  additionalProperties: false,
  required: ['name'],
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 253, pattern: '^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$' },
    namespace: { type: 'string', minLength: 1, maxLength: 63, pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$' },
    labels: { type: 'object', additionalProperties: { type: 'string' } },
    annotations: { type: 'object', additionalProperties: { type: 'string' } },
    uid: { type: 'string' },
    resourceVersion: { type: 'string' },
    generation: { type: 'integer' },
    creationTimestamp: { type: ['string', 'null'] },
    generateName: { type: 'string' },
    managedFields: ANY,
    ownerReferences: ANY,
    finalizers: ANY,
  },
};

const ciliumPolicy = {
  type: 'object',
  additionalProperties: false,
  required: ['apiVersion', 'kind', 'metadata'],
  properties: {
    apiVersion: { const: 'cilium.io/v2' },
    kind: { enum: ['CiliumNetworkPolicy', 'CiliumClusterwideNetworkPolicy'] },
    metadata,
    spec: { $ref: '#/$defs/rule' },
    specs: { type: 'array', items: { $ref: '#/$defs/rule' } },
    status: ANY,
  },
  $defs: {
    rule: ciliumRule,
    labelSelector,
    cidrRule,
    portRule,
    portDenyRule,
    portProtocol,
    ingressRule: peerRule('from', false),
    ingressDenyRule: peerRule('from', true),
    egressRule: peerRule('to', false),
    egressDenyRule: peerRule('to', true),
  },
};

const k8sPeer = {
  type: 'object',
  additionalProperties: false,
  properties: {
    podSelector: labelSelector,
    namespaceSelector: labelSelector,
    ipBlock: {
      type: 'object',
      additionalProperties: false,
      required: ['cidr'],
      properties: { cidr: { type: 'string' }, except: { type: 'array', items: { type: 'string' } } },
    },
  },
};

const k8sPort = {
  type: 'object',
  additionalProperties: false,
  properties: {
    protocol: { type: 'string' },
    port: { type: ['string', 'integer'] },
    endPort: { type: 'integer' },
  },
};

const k8sPolicy = {
  type: 'object',
  additionalProperties: false,
  required: ['apiVersion', 'kind', 'metadata', 'spec'],
  properties: {
    apiVersion: { const: 'networking.k8s.io/v1' },
    kind: { const: 'NetworkPolicy' },
    metadata,
    spec: {
      type: 'object',
      additionalProperties: false,
      required: ['podSelector'],
      properties: {
        podSelector: labelSelector,
        policyTypes: { type: 'array', items: { enum: ['Ingress', 'Egress'] } },
        ingress: {
          type: 'array',
          items: {
            type: 'object',
            additionalProperties: false,
            properties: { from: { type: 'array', items: k8sPeer }, ports: { type: 'array', items: k8sPort } },
          },
        },
        egress: {
          type: 'array',
          items: {
            type: 'object',
            additionalProperties: false,
            properties: { to: { type: 'array', items: k8sPeer }, ports: { type: 'array', items: k8sPort } },
          },
        },
      },
    },
    status: ANY,
  },
};

// Compiling is the slow part of ajv (hundreds of ms on a busy machine), so each kind's
// validator is compiled on first use only.
let ajv: Ajv | undefined;
const validators: Partial<Record<'cilium' | 'k8s', ValidateFunction>> = {};

function getValidator(kind: 'cilium' | 'k8s'): ValidateFunction {
  let v = validators[kind];
  if (!v) {
    ajv ??= new Ajv({ strict: true, allErrors: true, allowUnionTypes: true });
    v = ajv.compile(kind === 'cilium' ? ciliumPolicy : k8sPolicy);
    validators[kind] = v;
  }
  return v;
}

export interface SchemaIssue {
  path: string;
  reason: string;
}

/** `/spec/ingress/0/toPorts` → `spec.ingress[0].toPorts`. */
export function pointerToPath(pointer: string): string {
  let out = '';
  for (const raw of pointer.split('/').slice(1)) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (/^\d+$/.test(seg)) out += `[${seg}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(seg)) out += out === '' ? seg : `.${seg}`;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}

function describe(e: ErrorObject): SchemaIssue {
  const base = pointerToPath(e.instancePath);
  const at = (child: string): string => (base === '' ? child : `${base}.${child}`);
  switch (e.keyword) {
    case 'additionalProperties':
      return { path: at(String(e.params.additionalProperty)), reason: 'unknown field' };
    case 'required':
      return { path: at(String(e.params.missingProperty)), reason: 'required field is missing' };
    case 'type':
      return { path: base || '(document)', reason: `must be ${String(e.params.type).replace(',', ' or ')}` };
    case 'enum':
      return { path: base, reason: `must be one of ${(e.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}` };
    case 'const':
      return { path: base, reason: `must be ${JSON.stringify(e.params.allowedValue)}` };
    case 'pattern':
      return { path: base, reason: 'must be a DNS-1123 name (lower-case letters, digits, - and .)' };
    default:
      return { path: base || '(document)', reason: e.message ?? e.keyword };
  }
}

/** Schema issues of one document of a known kind; empty when it conforms. */
export function schemaIssues(kind: 'cilium' | 'k8s', doc: unknown): SchemaIssue[] {
  const v = getValidator(kind);
  if (v(doc)) return [];
  const seen = new Set<string>();
  const out: SchemaIssue[] = [];
  for (const e of v.errors ?? []) {
    const issue = describe(e);
    const k = `${issue.path}: ${issue.reason}`;
    if (!seen.has(k)) {
      seen.add(k);
      out.push(issue);
    }
  }
  return out;
}
