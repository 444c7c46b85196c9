/**
 * The agent's Prometheus endpoint: `GET /metrics` over plain HTTP on
 * 127.0.0.1:9962 by default (Cilium's prometheus port), configured by
 * `metrics.address` (IP:PORT, [IPv6]:PORT, port 0 = ephemeral; false = off).
 * Every scrape renders afresh (prometheus.ts); nothing is cached.
 *
 * API:
 *   parseListenAddress(s) -> { host, port } | undefined
 *   startMetricsServer(address, scrape, pages?) -> { address, close() }   throws MetricsServerError
 *   serveMetrics(address | false, scrape, warn, pages?) -> MetricsHandle  never throws for a busy port
 *
 * Extra pages (the live view, live-view-api.ts) ride on the same listener:
 * `pages` maps a path to a function of the query returning a body and its
 * content type. They are GET/HEAD only, like /metrics.
 *
 * A port already in use is one line (`metrics.address: 127.0.0.1:9962 is
 * in use`), not a crash. serveMetrics reports it through `warn` and keeps the
 * agent running without the endpoint: metrics are for watching the
 * datapath, and a second agent or a test run on the same host must not stop
 * forwarding over a port. /v1/status shows the error.
 */
import { createServer, type Server, type ServerResponse } from 'node:http';
import { isIPv4, isIPv6, type AddressInfo } from 'node:net';
import { EXPOSITION_CONTENT_TYPE } from './prometheus.ts';

/** The endpoint could not be opened; the message is one line naming `metrics.address`. */
export class MetricsServerError extends Error {
  override name = 'MetricsServerError';
}

/** A running metrics endpoint. */
export interface MetricsServer {
  /** The bound address, "IP:PORT" ("[IPv6]:PORT"), with the real port when 0 was asked for. */
  address: string;
  close(): Promise<void>;
}

/** The endpoint as the agent holds it: running, off, or failed to start. */
export interface MetricsHandle {
  status(): { enabled: boolean; address: string | null; error?: string };
  close(): Promise<void>;
}

/** A page served next to /metrics: a path's body and content type, from the query. */
export type MetricsPage = (query: URLSearchParams) => Promise<{ type: string; body: string }>;

/** "IP:PORT" or "[IPv6]:PORT" with PORT 0-65535; undefined when malformed. */
export function parseListenAddress(s: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([0-9.]+)):(\d{1,5})$/.exec(s);
  if (!m) return undefined;
  const host = m[1] ?? m[2]!;
  const port = Number(m[3]);
  if (port > 65535) return undefined;
  if (m[1] !== undefined ? !isIPv6(host) : !isIPv4(host)) return undefined;
  return { host, port };
}

function hostPort(host: string, port: number): string {
  return isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Listen on `address` and answer `GET /metrics` with `scrape()`. */
export async function startMetricsServer(address: string, scrape: () => Promise<string>, pages: Record<string, MetricsPage> = {}): Promise<MetricsServer> {
  const a = parseListenAddress(address);
  if (!a) throw new MetricsServerError(`metrics.address: "${address}" is not IP:PORT`);
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    const page = Object.hasOwn(pages, path) ? pages[path] : undefined;
    if (page && (req.method === 'GET' || req.method === 'HEAD')) {
      servePage(page, new URL(req.url ?? '/', 'http://x').searchParams, req.method, res);
      return;
    }
    if (path !== '/metrics' && !page) {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found: try /metrics\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }).end('method not allowed\n');
      return;
    }
    scrape().then(
      (text) => {
        res.writeHead(200, { 'content-type': EXPOSITION_CONTENT_TYPE, 'content-length': Buffer.byteLength(text) });
        res.end(req.method === 'HEAD' ? undefined : text);
      },
      (e: Error) => {
        res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end(`scrape failed: ${e.message}\n`);
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EADDRINUSE') reject(new MetricsServerError(`metrics.address: ${address} is in use`));
      else if (e.code === 'EADDRNOTAVAIL') reject(new MetricsServerError(`metrics.address: ${address} is not an address of this host`));
      else reject(new MetricsServerError(`metrics.address: ${address}: ${e.code ?? e.message}`));
    });
    server.listen({ host: a.host, port: a.port, exclusive: true }, () => resolve());
  });
  const bound = server.address() as AddressInfo;
  return {
    address: hostPort(a.host, bound.port),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** One extra page: 200 with its body, 400 for an error carrying that status, else 500. */
function servePage(page: MetricsPage, query: URLSearchParams, method: string, res: ServerResponse): void {
  page(query).then(
    ({ type, body }) => {
      res.writeHead(200, { 'content-type': type, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
      res.end(method === 'HEAD' ? undefined : body);
    },
    (e: Error & { status?: number }) => {
      res.writeHead(e.status === 400 ? 400 : 500, { 'content-type': 'text/plain; charset=utf-8' }).end(`${e.message}\n`);
    },
  );
}

/** Start the endpoint if configured; a start failure goes to `warn` and into status, not up the stack. */
export async function serveMetrics(address: string | false, scrape: () => Promise<string>, warn: (line: string) => void, pages: Record<string, MetricsPage> = {}): Promise<MetricsHandle> {
  if (address === false) return { status: () => ({ enabled: false, address: null }), close: async () => undefined };
  try {
    const s = await startMetricsServer(address, scrape, pages);
    return { status: () => ({ enabled: true, address: s.address }), close: () => s.close() };
  } catch (e) {
    if (!(e instanceof MetricsServerError)) throw e;
    warn(e.message);
    const error = e.message;
    return { status: () => ({ enabled: true, address: null, error }), close: async () => undefined };
  }
}
