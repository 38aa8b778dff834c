/** Envoy (or another client) rejected a version: carries the client's own message. */
export class NackError extends Error {
  constructor(
    readonly nodeId: string,
    readonly typeUrl: string,
    readonly version: string,
    readonly detail: string,
  ) {
    super(`node "${nodeId}" rejected ${typeUrl} version ${version}: ${detail}`);
    this.name = 'NackError';
  }
}

export class AckTimeoutError extends Error {
  constructor(
    readonly nodeId: string,
    readonly typeUrl: string,
    readonly version: string,
    timeoutMs: number,
  ) {
    super(`node "${nodeId}" did not acknowledge ${typeUrl} version ${version} within ${timeoutMs} ms`);
    this.name = 'AckTimeoutError';
  }
}

/** A request the server cannot serve; closes only the stream that sent it. */
export class XdsProtocolError extends Error {
  constructor(
    readonly grpcCode: number,
    message: string,
  ) {
    super(message);
    this.name = 'XdsProtocolError';
  }
}
