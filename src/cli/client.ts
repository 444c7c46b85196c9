/**
 * HTTP client for the agent's unix-socket API.
 *
 * API: api(method, path, body?, socket?) -> parsed JSON, or throws ApiError
 */
import { request } from 'node:http';
import { socketPath } from '../agent/defaults.ts';

/** The agent answered with an error, or could not be reached. */
export class ApiError extends Error {
  override name = 'ApiError';
  constructor(
    message: string,
    readonly status = 0,
  ) {
    super(message);
  }
}

/** Call the agent API. */
export function api<T = unknown>(method: string, path: string, body?: unknown, socket?: string): Promise<T> {
  const sock = socketPath(socket);
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        socketPath: sock,
        // One connection per call: a kept-alive socket the agent has just closed fails the next write with EPIPE.
        agent: false,
        method,
        path,
        headers: payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {},
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let v: unknown;
          try {
            v = text ? JSON.parse(text) : null;
          } catch {
            return reject(new ApiError(`agent sent invalid JSON: ${text.slice(0, 200)}`, res.statusCode ?? 0));
          }
          if ((res.statusCode ?? 500) >= 400) {
            const msg = (v as { error?: string } | null)?.error ?? `HTTP ${res.statusCode}`;
            return reject(new ApiError(msg, res.statusCode ?? 0));
          }
          resolve(v as T);
        });
      },
    );
    req.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT' || e.code === 'ECONNREFUSED') reject(new ApiError(`cannot reach the agent at ${sock}: is \`tapestry agent\` running? (${e.code})`));
      else if (e.code === 'EACCES') reject(new ApiError(`cannot open ${sock}: permission denied (run as root)`));
      else reject(new ApiError(`${sock}: ${e.message}`));
    });
    if (payload) req.write(payload);
    req.end();
  });
}
