/**
 * The agent's REST API on a unix socket readable by root only (Cilium's
 * cilium.sock). JSON in, JSON out; errors are `{ "error": "field: problem" }`
 * with a 4xx status.
 *
 *   GET    /v1/healthz
 *   GET    /v1/status
 *   GET    /v1/endpoint              list
 *   GET    /v1/endpoint/{id|name}
 *   PUT    /v1/endpoint              create (CNI ADD), body = endpoint spec
 *   DELETE /v1/endpoint/{id|name}    (CNI DEL)
 *   GET    /v1/metrics/datapath      drop/forward counters by reason and direction
 *   GET    /v1/ports                 per-device counters
 *   GET    /v1/ct                    conntrack entries (all four tables)
 *   DELETE /v1/ct                    flush conntrack
 *
 * API: startApiServer(socketPath, handlers) -> { close() }
 */
import { chmodSync, mkdirSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { dirname } from 'node:path';

/** A handler answers with a JSON-able value or throws an error with `status`. */
export type Handler = (params: { id?: string; body?: unknown; query?: URLSearchParams }) => Promise<unknown> | unknown;

/** Route table: "METHOD /path" or "METHOD /path/:id". */
export type Routes = Record<string, Handler>;

/** Error with an HTTP status (anything else is a 500). */
export interface StatusError extends Error {
  status?: number;
}

const MAX_BODY = 1 << 20;

function readBody(req: IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    let size = 0;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(Object.assign(new Error('body: larger than 1 MiB'), { status: 413 }));
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => {
      if (size === 0) return resolve(undefined);
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      } catch (e) {
        reject(Object.assign(new Error(`body: invalid JSON: ${(e as Error).message}`), { status: 400 }));
      }
    });
    req.on('error', reject);
  });
}

function send(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value ?? null);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/** Listen on `socketPath` (directory 0700, socket 0600). */
export async function startApiServer(socketPath: string, routes: Routes): Promise<{ close(): Promise<void> }> {
  mkdirSync(dirname(socketPath), { recursive: true, mode: 0o700 });
  rmSync(socketPath, { force: true });
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://tapestry');
    const parts = url.pathname.split('/').filter(Boolean);
    let handler = routes[`${req.method} ${url.pathname}`];
    let id: string | undefined;
    if (!handler && parts.length > 0) {
      id = decodeURIComponent(parts[parts.length - 1]!);
      handler = routes[`${req.method} /${parts.slice(0, -1).join('/')}/:id`];
    }
    if (!handler) return send(res, 404, { error: `no such API: ${req.method} ${url.pathname}` });
    readBody(req)
      .then((body) => handler({ ...(id !== undefined ? { id } : {}), body, query: url.searchParams }))
      .then((v) => send(res, 200, v))
      .catch((e: StatusError) => send(res, e.status ?? 500, { error: e.message }));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => resolve());
  });
  chmodSync(socketPath, 0o600);
  return {
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
        rmSync(socketPath, { force: true });
      }),
  };
}
