// Policy import errors. Each names the document (file, index, kind and name), the field
// path inside it and the reason; an import with any error applies nothing.

export interface PolicyErrorInit {
  /** File name or other origin of the text, when known. */
  source?: string;
  /** 1-based document index in the YAML stream (items of a List get `3.items[1]`). */
  document: string;
  /** `CiliumNetworkPolicy "ns/name"` when kind and name are known. */
  what?: string;
  /** `spec.ingress[0].toPorts[1].rules.kafka[2].topic`, or '' for the whole document. */
  path: string;
  reason: string;
}

export class PolicyError extends Error {
  readonly source?: string;
  readonly document: string;
  readonly what?: string;
  readonly path: string;
  readonly reason: string;

  constructor(init: PolicyErrorInit) {
    super(formatPolicyError(init));
    this.name = 'PolicyError';
    this.source = init.source;
    this.document = init.document;
    this.what = init.what;
    this.path = init.path;
    this.reason = init.reason;
  }
}

export function formatPolicyError(e: PolicyErrorInit): string {
  const where = `${e.source ? `${e.source}: ` : ''}document ${e.document}${e.what ? ` (${e.what})` : ''}`;
  return `${where}: ${e.path ? `${e.path}: ` : ''}${e.reason}`;
}

/** Thrown by import paths that must apply all documents or none. */
export class PolicyImportError extends Error {
  constructor(readonly errors: readonly PolicyError[]) {
    super(`policy import rejected, nothing applied (${errors.length} error${errors.length === 1 ? '' : 's'}):\n${errors.map((e) => `  ${e.message}`).join('\n')}`);
    this.name = 'PolicyImportError';
  }
}
