// Minimal client for Envoy's admin endpoint over a unix socket or loopback TCP.
import http from 'node:http';
import type { LocalAddress } from '../bootstrap.js';

export const ADMIN_TIMEOUT_MS = 2000;

export interface AdminResponse {
  status: number;
  body: string;
}

export function adminRequest(admin: LocalAddress, method: 'GET' | 'POST', path: string, timeoutMs = ADMIN_TIMEOUT_MS): Promise<AdminResponse> {
  return new Promise((resolve, reject) => {
    const target = 'path' in admin ? { socketPath: admin.path } : { host: admin.host, port: admin.port };
    const req = http.request({ ...target, method, path, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`envoy admin ${method} ${path}: no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}
