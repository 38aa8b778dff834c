// The one error catalog of the agent. Every failure the REST API reports carries a stable
// code, an HTTP status and a message naming the field and the reason; the CLI maps the
// code to an exit status, so codes are part of the API.

export const ErrorCatalog = {
  L7M_ERR_BAD_REQUEST: { status: 400, title: 'bad request' },
  L7M_ERR_BAD_JSON: { status: 400, title: 'request body is not valid JSON' },
  L7M_ERR_VALIDATION: { status: 400, title: 'request does not match the schema' },
  L7M_ERR_INVALID_LABELS: { status: 400, title: 'invalid labels' },
  L7M_ERR_INVALID_POLICY: { status: 400, title: 'invalid policy' },
  L7M_ERR_UNAUTHORIZED: { status: 401, title: 'missing or wrong bearer token' },
  L7M_ERR_NOT_FOUND: { status: 404, title: 'not found' },
  L7M_ERR_ROUTE_NOT_FOUND: { status: 404, title: 'no such API route' },
  L7M_ERR_CONFLICT: { status: 409, title: 'conflict' },
  L7M_ERR_PAYLOAD_TOO_LARGE: { status: 413, title: 'request body too large' },
  L7M_ERR_UNSUPPORTED_MEDIA: { status: 415, title: 'unsupported content type' },
  L7M_ERR_APPLY_FAILED: { status: 422, title: 'policy apply failed; the previous revision stays in force' },
  L7M_ERR_NACK: { status: 422, title: 'Envoy rejected the configuration; the previous revision stays in force' },
  L7M_ERR_WAIT_TIMEOUT: { status: 504, title: 'timed out waiting for the revision' },
  L7M_ERR_DATAPATH: { status: 502, title: 'datapath operation failed' },
  L7M_ERR_UNAVAILABLE: { status: 503, title: 'component unavailable' },
  L7M_ERR_INTERNAL: { status: 500, title: 'internal error' },
} as const;

export type ErrorCode = keyof typeof ErrorCatalog;

/** An error the API reports as is: `code` from the catalog, `message` naming field and reason. */
export class AgentError extends Error {
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = 'AgentError';
    this.status = ErrorCatalog[code].status;
  }
}

export function notFound(what: string, id: string | number): AgentError {
  return new AgentError('L7M_ERR_NOT_FOUND', `${what} "${id}" not found`);
}

/** The JSON body of every error response. */
export interface ErrorBody {
  code: ErrorCode;
  status: number;
  message: string;
  details?: unknown;
}
