/**
 * The admin HTTP endpoint: `/metrics` (Prometheus text), `/healthz` (liveness: the process serves),
 * `/readyz` (readiness: 200 or 503 with a JSON reason; see readiness.ts), `/status` (JSON).
 * Read-only.
 */
import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';

export class AdminServer {
  private readonly http: Server;

  constructor(
    registry: Registry,
    status: () => unknown,
    healthy: () => boolean,
    ready: () => { readonly ready: boolean } = () => ({ ready: healthy() }),
  ) {
    this.http = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      if (req.method !== 'GET') {
        res.writeHead(405, { allow: 'GET' }).end();
        return;
      }
      if (path === '/metrics') {
        registry.metrics().then(
          (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
          (e: Error) => res.writeHead(500).end(e.message),
        );
      } else if (path === '/healthz') {
        const ok = healthy();
        res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' }).end(ok ? 'ok\n' : 'stopping\n');
      } else if (path === '/readyz') {
        const r = ready();
        res
          .writeHead(r.ready ? 200 : 503, { 'content-type': 'application/json' })
          .end(`${JSON.stringify(r)}\n`);
      } else if (path === '/status') {
        res.writeHead(200, { 'content-type': 'application/json' }).end(`${JSON.stringify(status())}\n`);
      } else {
        res.writeHead(404).end();
      }
    });
    // Bad requests get a 400 and the connection is closed at once (node's default may wait).
    this.http.on('clientError', (_err, socket) => {
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n');
      socket.destroy();
    });
    this.http.headersTimeout = 5000;
    this.http.requestTimeout = 10_000;
  }

  listen(port: number, host: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.http.once('error', reject);
      this.http.listen(port, host, () => {
        this.http.off('error', reject);
        const a = this.http.address();
        resolve(typeof a === 'object' && a !== null ? a.port : port);
      });
    });
  }

  close(): Promise<void> {
    this.http.closeAllConnections();
    return new Promise((resolve) => this.http.close(() => resolve()));
  }
}
