// JSON schemas shared by the REST routes. Request schemas are strict (unknown fields
// are refused, so a typo never passes silently); response schemas describe the shape
// for the OpenAPI document and serialisation.

export const ErrorSchema = {
  $id: 'Error',
  type: 'object',
  required: ['code', 'status', 'message'],
  properties: {
    code: { type: 'string', description: 'stable error code from the catalog (L7M_ERR_*)' },
    status: { type: 'integer' },
    message: { type: 'string', description: 'names the field and the reason' },
    details: {},
  },
} as const;

export const errorResponses = {
  400: { $ref: 'Error#' },
  404: { $ref: 'Error#' },
  409: { $ref: 'Error#' },
  422: { $ref: 'Error#' },
  500: { $ref: 'Error#' },
} as const;

const labelList = { type: 'array', items: { type: 'string', maxLength: 512 }, maxItems: 64 } as const;

export const EndpointSchema = {
  $id: 'Endpoint',
  type: 'object',
  required: ['id', 'name', 'labels', 'state', 'ipv4', 'policyRevision'],
  properties: {
    id: { type: 'integer' },
    name: { type: 'string' },
    labels: { type: 'array', items: { type: 'string' } },
    identity: { type: 'integer' },
    state: { type: 'string', enum: ['waiting-for-identity', 'regenerating', 'ready', 'not-ready', 'disconnecting'] },
    ipv4: { type: 'string' },
    gateway: { type: 'string' },
    netns: { type: 'string' },
    hostIfName: { type: 'string' },
    cgroupPath: { type: 'string' },
    policyRevision: { type: 'integer' },
    ingressEnforced: { type: 'boolean' },
    egressEnforced: { type: 'boolean' },
    createdAt: { type: 'string' },
    lastError: { type: 'string' },
  },
} as const;

export const EndpointCreateSchema = {
  type: 'object',
  required: ['name', 'labels'],
  additionalProperties: false,
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 63 },
    labels: labelList,
  },
} as const;

export const EndpointLabelsSchema = {
  type: 'object',
  additionalProperties: false,
  properties: { add: labelList, delete: labelList },
} as const;

export const IdentitySchema = {
  $id: 'Identity',
  type: 'object',
  required: ['id', 'labels', 'reserved', 'refs'],
  properties: {
    id: { type: 'integer' },
    labels: { type: 'array', items: { type: 'string' } },
    reserved: { type: 'boolean' },
    refs: { type: 'integer' },
  },
} as const;

export const PolicySchema = {
  $id: 'Policy',
  type: 'object',
  required: ['key', 'kind', 'revision'],
  properties: {
    key: { type: 'string' },
    kind: { type: 'string' },
    revision: { type: 'integer', description: 'revision that imported this version of the document' },
    spec: { type: 'object', additionalProperties: true },
  },
} as const;

export const PolicyImportSchema = {
  type: 'object',
  required: ['text'],
  additionalProperties: false,
  properties: {
    text: { type: 'string', minLength: 1, maxLength: 1_000_000, description: 'one or more CiliumNetworkPolicy documents, YAML or JSON' },
    wait: { type: 'boolean', description: 'wait (bounded by the agent ack timeout) for every Envoy to ACK; default true' },
  },
} as const;

export const RevisionSchema = {
  $id: 'Revision',
  type: 'object',
  required: ['revision', 'datapath', 'proxyAcked'],
  properties: {
    revision: { type: 'integer' },
    datapath: { type: 'boolean' },
    proxyAcked: { type: 'boolean' },
    nack: { type: 'string' },
  },
} as const;

export const idParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', minLength: 1, maxLength: 253 } },
} as const;

export const anyObject = { type: 'object', additionalProperties: true } as const;

export const sharedSchemas = [ErrorSchema, EndpointSchema, IdentitySchema, PolicySchema, RevisionSchema];
