// The per-connection Kafka enforcement state, independent of the transport that feeds
// it bytes. Requests flow client→broker (read path), responses broker→client (write
// path). A denied request is replaced by a harmless ApiVersions v0 request with the same
// correlation id so the broker's answer keeps its place in the response order; that
// answer is then swapped for the error response of the denied API. Anything that cannot
// be parsed, or a response that does not match the next pending request, ends the
// connection: enforcement fails closed.
import { ApiKey, apiKeyName } from './api-keys.js';
import type { KafkaAuditLog } from './audit.js';
import { capApiVersionsResponse } from './api-versions.js';
import type { KafkaPolicyEngine } from './engine.js';
import { buildErrorResponse, denialErrorCode, denyKindFor } from './error-response.js';
import { FrameSplitter, MAX_FRAME_BYTES, MIN_REQUEST_BYTES } from './frame.js';
import { encodeRequestHeader, frame, responseCorrelationId } from './header.js';
import { parseRequest } from './request.js';
import { KafkaDecodeError } from './wire.js';

/** Size prefix and correlation id: what l7mesh reads of a response it lets through. */
const RESPONSE_HEAD_BYTES = 8;

/** What the session passes on for one chunk, and whether the connection must close. */
export class SessionResult {
  private joined?: Buffer;

  constructor(
    /** Bytes to pass on in this direction, in order (possibly none); views, not copies. */
    readonly parts: Buffer[],
    /** Set when the connection must be closed; the bytes are still delivered first. */
    readonly close?: string,
  ) {}

  /** The same bytes as one buffer (joined on first use). */
  get data(): Buffer {
    this.joined ??= this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts);
    return this.joined;
  }
}

interface Pending {
  correlationId: number;
  apiKey: number;
  apiVersion: number;
  /** The error response that replaces the broker's answer to the substitute request. */
  replacement?: Buffer;
}

/** Observer of every complete frame (request or response) the session handles. */
export type FrameTap = (dir: 'request' | 'response', frame: Buffer, apiKey: number, apiVersion: number) => void;

export interface SessionContext {
  engine: KafkaPolicyEngine;
  tap?: FrameTap;
  audit?: KafkaAuditLog;
  identity?: number | null;
  policy?: string;
}

/** Pipelining bound per connection; Kafka clients default to 5 in flight. */
export const MAX_IN_FLIGHT = 1000;

export class KafkaSession {
  private readonly requests = new FrameSplitter(MIN_REQUEST_BYTES);
  /** Bytes of the current response frame taken but not yet passed on (its header, or all of it when held). */
  private resHead: Buffer[] = [];
  private resHeadBytes = 0;
  /** When > 0, the current response frame is held whole (size prefix included) before it is handled. */
  private resHold = 0;
  /** Bytes of the current response frame that pass through unread. */
  private resPass = 0;
  private readonly pending: Pending[] = [];
  private closed: string | null = null;
  readonly stats = { allowed: 0, denied: 0, dropped: 0 };

  constructor(private readonly ctx: SessionContext) {}

  /**
   * Client→broker bytes. `end` marks the client's half-close: a frame still incomplete
   * then can never be completed, so the connection closes with the reason.
   */
  onRequestData(chunk: Buffer, end = false): SessionResult {
    if (this.closed) return new SessionResult([], this.closed);
    const out: Buffer[] = [];
    try {
      for (const f of this.requests.push(chunk)) {
        const forwarded = this.onRequestFrame(f);
        if (forwarded) out.push(forwarded);
      }
    } catch (err) {
      return this.fail(out, `bad request: ${(err as Error).message}`);
    }
    if (end && this.requests.buffered() > 0) {
      return this.fail(out, `truncated request: the client ended the connection ${this.requests.buffered()} bytes into a frame (never forwarded)`);
    }
    return new SessionResult(out);
  }

  /**
   * Broker→client bytes. A response is checked by its header (size and correlation id
   * against the next pending request); one that l7mesh does not rewrite then streams
   * through as its bytes arrive, so a large Fetch answer is neither held back nor
   * copied. Responses that are replaced (denials) or rewritten (ApiVersions) are held
   * until complete.
   */
  onResponseData(chunk: Buffer, end = false): SessionResult {
    if (this.closed) return new SessionResult([], this.closed);
    const out: Buffer[] = [];
    try {
      let off = 0;
      while (off < chunk.length) {
        if (this.resPass > 0) {
          const n = Math.min(this.resPass, chunk.length - off);
          out.push(chunk.subarray(off, off + n));
          off += n;
          this.resPass -= n;
          continue;
        }
        const need = this.resHold > 0 ? this.resHold : RESPONSE_HEAD_BYTES;
        const take = Math.min(need - this.resHeadBytes, chunk.length - off);
        this.resHead.push(chunk.subarray(off, off + take));
        this.resHeadBytes += take;
        off += take;
        if (this.resHeadBytes === need) this.onResponseHead(out);
      }
    } catch (err) {
      return this.fail(out, `bad response: ${(err as Error).message}`);
    }
    if (end && (this.resHeadBytes > 0 || this.resPass > 0)) {
      return this.fail(out, `truncated response: the broker ended the connection ${this.resPass > 0 ? `${this.resPass} bytes short of a frame` : `${this.resHeadBytes} bytes into a frame`}`);
    }
    return new SessionResult(out);
  }

  /** The header of a response, or a held frame, is complete in `resHead`. */
  private onResponseHead(out: Buffer[]): void {
    const buf = this.resHead.length === 1 ? this.resHead[0]! : Buffer.concat(this.resHead, this.resHeadBytes);
    this.resHead = [];
    this.resHeadBytes = 0;
    if (this.resHold > 0) {
      this.resHold = 0;
      out.push(this.onResponseFrame(buf));
      return;
    }
    const size = buf.readInt32BE(0);
    if (size < 4 || size > MAX_FRAME_BYTES) throw new KafkaDecodeError(`frame size ${size} outside [4, ${MAX_FRAME_BYTES}]`);
    const next = this.pending[0];
    const corr = buf.readInt32BE(4);
    if (!next) throw new Error(`response with correlation id ${corr} but no request pending`);
    if (next.correlationId !== corr) throw new Error(`response correlation id ${corr} does not match pending request ${next.correlationId}`);
    if (next.replacement || next.apiKey === ApiKey.ApiVersions || this.ctx.tap) {
      this.resHold = 4 + size;
      this.resHead = [buf];
      this.resHeadBytes = buf.length;
      if (this.resHeadBytes === this.resHold) this.onResponseHead(out);
      return;
    }
    this.pending.shift();
    out.push(buf);
    this.resPass = size + 4 - buf.length;
  }

  private fail(out: Buffer[], reason: string): SessionResult {
    this.closed = reason;
    return new SessionResult(out, reason);
  }

  private onRequestFrame(f: Buffer): Buffer | null {
    const req = parseRequest(f);
    const h = req.header;
    this.ctx.tap?.('request', f, h.apiKey, h.apiVersion);
    const verdict = this.ctx.engine.decide({ apiKey: h.apiKey, apiVersion: h.apiVersion, clientId: h.clientId, topics: req.topics, topicsKnown: req.topicsKnown });
    // The refusal is settled before the audit record is written, so the record names
    // what the client saw: the error code of the response, or a dropped/closed request.
    let replacement: Buffer | undefined;
    let errorCode: number | undefined;
    let outcome: 'dropped' | 'closed' | undefined;
    let buildError: string | undefined;
    if (!verdict.allowed) {
      if (!req.expectsResponse) {
        outcome = 'dropped';
      } else {
        // A topic the policy refused is reported as a topic error even on group APIs
        // (OffsetCommit/OffsetFetch), as Kafka's own authorizer does.
        const kind = verdict.reason === 'topic' ? 'topic' : denyKindFor(req);
        try {
          replacement = buildErrorResponse(req, kind);
        } catch (err) {
          buildError = (err as Error).message;
        }
        if (replacement) errorCode = denialErrorCode(req, kind);
        else outcome = 'closed';
      }
    }
    const denyReason = verdict.allowed ? undefined : verdict.reason === 'api' ? 'api key not allowed' : `topic not allowed: ${verdict.deniedTopics.join(',')}`;
    this.ctx.audit?.write({
      time: new Date().toISOString(),
      identity: this.ctx.identity ?? null,
      policy: this.ctx.policy ?? '',
      clientId: h.clientId,
      apiKey: apiKeyName(h.apiKey),
      apiKeyNum: h.apiKey,
      apiVersion: h.apiVersion,
      correlationId: h.correlationId,
      topics: req.topics,
      ...(req.groups.length === 0 ? {} : { groups: req.groups }),
      verdict: verdict.allowed ? 'allow' : 'deny',
      rule: verdict.rule,
      ...(denyReason === undefined ? {} : { reason: outcome === 'closed' ? `${denyReason}; connection closed: no error response for this API version` : denyReason }),
      ...(errorCode === undefined ? {} : { errorCode }),
      ...(outcome === undefined ? {} : { outcome }),
    });
    if (this.pending.length >= MAX_IN_FLIGHT) throw new Error(`more than ${MAX_IN_FLIGHT} requests in flight`);
    if (verdict.allowed) {
      this.stats.allowed++;
      if (req.expectsResponse) this.pending.push({ correlationId: h.correlationId, apiKey: h.apiKey, apiVersion: h.apiVersion });
      return f;
    }
    if (outcome === 'dropped') {
      // acks=0: the client waits for nothing, so the request simply vanishes.
      this.stats.dropped++;
      return null;
    }
    if (!replacement) throw new Error(buildError ?? `${apiKeyName(h.apiKey)} v${h.apiVersion} denied and no error response exists for it`);
    this.stats.denied++;
    this.pending.push({ correlationId: h.correlationId, apiKey: h.apiKey, apiVersion: h.apiVersion, replacement });
    return frame(encodeRequestHeader({ apiKey: ApiKey.ApiVersions, apiVersion: 0, correlationId: h.correlationId, clientId: h.clientId }));
  }

  private onResponseFrame(f: Buffer): Buffer {
    const next = this.pending.shift();
    const corr = responseCorrelationId(f);
    if (!next) throw new Error(`response with correlation id ${corr} but no request pending`);
    if (next.correlationId !== corr) throw new Error(`response correlation id ${corr} does not match pending request ${next.correlationId}`);
    if (next.replacement) return next.replacement;
    this.ctx.tap?.('response', f, next.apiKey, next.apiVersion);
    if (next.apiKey === ApiKey.ApiVersions) return capApiVersionsResponse(Buffer.from(f), next.apiVersion);
    return f;
  }

  /** Requests forwarded whose responses have not come back yet. */
  inFlight(): number {
    return this.pending.length;
  }
}
