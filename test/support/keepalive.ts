// One HTTP/1.1 connection used for many requests, so a test can prove that a policy
// change neither closed it nor let it keep old permissions.
import net from 'node:net';

export class KeepAliveConnection {
  private sock: net.Socket;
  private buf = '';
  private waiter: (() => void) | undefined;
  closed = false;

  private constructor(sock: net.Socket) {
    this.sock = sock;
    sock.setEncoding('latin1');
    sock.on('data', (d) => {
      this.buf += d;
      this.waiter?.();
    });
    sock.on('close', () => {
      this.closed = true;
      this.waiter?.();
    });
    sock.on('error', () => undefined);
  }

  static open(host: string, port: number, localAddress: string, timeoutMs = 3000): Promise<KeepAliveConnection> {
    return new Promise((resolve, reject) => {
      const sock = net.connect({ host, port, localAddress });
      const t = setTimeout(() => {
        sock.destroy();
        reject(new Error(`connect ${host}:${port} timed out`));
      }, timeoutMs);
      sock.once('connect', () => {
        clearTimeout(t);
        resolve(new KeepAliveConnection(sock));
      });
      sock.once('error', (e) => {
        clearTimeout(t);
        reject(e);
      });
    });
  }

  get localPort(): number {
    return this.sock.localPort ?? 0;
  }

  /** Sends one GET and returns the status of its response (needs content-length framing). */
  async get(path: string, host = 'web', timeoutMs = 3000): Promise<number> {
    if (this.closed) throw new Error('connection closed by the peer');
    this.buf = '';
    this.sock.write(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const head = this.buf.indexOf('\r\n\r\n');
      if (head !== -1) {
        const cl = /\r\ncontent-length: *(\d+)/i.exec(this.buf.slice(0, head));
        if (cl && this.buf.length >= head + 4 + Number(cl[1])) return Number(/^HTTP\/1\.1 (\d{3})/.exec(this.buf)?.[1] ?? 0);
      }
      if (this.closed) throw new Error(`connection closed while waiting for ${path}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no response to GET ${path} within ${timeoutMs} ms`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiter = () => {
          clearTimeout(t);
          r();
        };
      });
      this.waiter = undefined;
    }
  }

  close(): void {
    this.sock.destroy();
  }
}
