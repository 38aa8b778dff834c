// The CLI's only way to the agent: its REST API, over the unix socket by default or
// loopback TCP with a bearer token. Errors come back as ApiError carrying the catalog
// code and the agent's message, so commands can print them as they are.

import { request, type IncomingMessage } from 'node:http';

export const DEFAULT_SOCKET = '/run/l7mesh/l7mesh.sock';
export const REQUEST_TIMEOUT_MS = 60_000;

export interface ApiTarget {
  /** Unix socket path, or an http://127.0.0.1:port URL. */
  api: string;
  token?: string;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export class UnreachableError extends Error {
  constructor(target: string, reason: string) {
    super(`cannot reach the l7mesh agent at ${target} (${reason}); is it running? Start it with \`l7mesh-agent\` (root), or point --api / L7MESH_API at it`);
    this.name = 'UnreachableError';
  }
}

export function targetFrom(values: { api?: string; token?: string }, env = process.env): ApiTarget {
  return { api: values.api ?? env.L7MESH_API ?? DEFAULT_SOCKET, token: values.token ?? env.L7MESH_TOKEN };
}

export class ApiClient {
  constructor(readonly target: ApiTarget) {}

  private options(method: string, path: string) {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.target.token) headers.authorization = `Bearer ${this.target.token}`;
    if (this.target.api.startsWith('http://')) {
      const u = new URL(this.target.api);
      return { method, host: u.hostname, port: Number(u.port || 80), path, headers };
    }
    return { method, socketPath: this.target.api, path, headers };
  }

  /** Sends one request; resolves to the parsed JSON body (or text), throws ApiError on 4xx/5xx. */
  async call<T = unknown>(method: string, path: string, body?: unknown, timeoutMs = REQUEST_TIMEOUT_MS): Promise<T> {
    const res = await this.open(method, path, body, timeoutMs);
    const text = await readAll(res);
    const type = String(res.headers['content-type'] ?? '');
    const parsed = type.includes('json') && text !== '' ? JSON.parse(text) : text;
    if ((res.statusCode ?? 500) >= 400) {
      const e = parsed as { code?: string; message?: string; details?: unknown };
      throw new ApiError(res.statusCode ?? 500, e.code ?? 'L7M_ERR_UNKNOWN', e.message ?? String(text).slice(0, 500), e.details);
    }
    return parsed as T;
  }

  /** Opens a streaming GET (JSON lines); calls onLine per object until the stream ends or `signal` aborts. */
  async stream(path: string, onLine: (obj: unknown) => void, signal?: AbortSignal): Promise<void> {
    const res = await this.open('GET', path, undefined, 0, signal);
    if ((res.statusCode ?? 500) >= 400) {
      const text = await readAll(res);
      const e = JSON.parse(text || '{}') as { code?: string; message?: string };
      throw new ApiError(res.statusCode ?? 500, e.code ?? 'L7M_ERR_UNKNOWN', e.message ?? text);
    }
    let buf = '';
    await new Promise<void>((resolve, reject) => {
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buf += chunk;
        let i: number;
        while ((i = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, i);
          buf = buf.slice(i + 1);
          if (line.trim()) onLine(JSON.parse(line));
        }
      });
      res.on('end', resolve);
      res.on('close', resolve);
      res.on('error', (e) => (signal?.aborted ? resolve() : reject(e)));
    });
  }

  private open(method: string, path: string, body: unknown, timeoutMs: number, signal?: AbortSignal): Promise<IncomingMessage> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const opts = this.options(method, path);
    if (payload) {
      opts.headers['content-type'] = 'application/json';
      opts.headers['content-length'] = String(payload.length);
    }
    return new Promise((resolve, reject) => {
      const req = request({ ...opts, signal }, resolve);
      if (timeoutMs > 0) {
        req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer from the agent within ${timeoutMs} ms`)));
      }
      req.on('error', (e: NodeJS.ErrnoException) => {
        if (signal?.aborted) return;
        if (e.code === 'ENOENT' || e.code === 'ECONNREFUSED' || e.code === 'EACCES') reject(new UnreachableError(this.target.api, e.code === 'EACCES' ? 'permission denied: the socket is root only' : e.code));
        else reject(e);
      });
      req.end(payload);
    });
  }
}

function readAll(res: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let s = '';
    res.setEncoding('utf8');
    res.on('data', (c: string) => (s += c));
    res.on('end', () => resolve(s));
    res.on('error', reject);
  });
}
