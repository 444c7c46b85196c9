/**
 * One call on a Tapestry agent's unix-socket API (the same HTTP+JSON the
 * CLI speaks), bounded by a timeout, for the benchmark's hooks: services
 * PUT one by one, drop counters and policy map hits read back.
 *
 * API: agentApi
 */
import { request, type Agent } from 'node:http';
import { BenchError } from './proc.ts';

/** Limit for one answer. */
const API_TIMEOUT_MS = 10_000;

/**
 * `method path` on the agent at `socket`, with an optional JSON body;
 * resolves with the parsed answer (undefined when empty), rejects on a
 * non-2xx status or no answer within 10 s.
 */
export function agentApi<T = unknown>(socket: string, method: string, path: string, body?: unknown, agent?: Agent): Promise<T> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      {
        socketPath: socket,
        path,
        method,
        ...(agent ? { agent } : {}),
        headers: data ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } : {},
        timeout: API_TIMEOUT_MS,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          if ((res.statusCode ?? 0) < 200 || (res.statusCode ?? 0) >= 300) {
            reject(new BenchError(`${method} ${path}: ${res.statusCode} ${text.slice(0, 200)}`));
            return;
          }
          try {
            resolve((text.trim() === '' ? undefined : JSON.parse(text)) as T);
          } catch {
            reject(new BenchError(`${method} ${path}: answer is not JSON: ${text.slice(0, 200)}`));
          }
        });
      },
    );
    req.on('timeout', () => req.destroy(new BenchError(`${method} ${path}: no answer within ${API_TIMEOUT_MS / 1000} s`)));
    req.on('error', reject);
    req.end(data);
  });
}
