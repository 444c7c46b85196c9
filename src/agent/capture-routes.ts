/**
 * Agent API for packet capture (datapath/capture.ts); the datapath worker
 * holds the sessions, the agent only relays. Frames travel base64-encoded.
 *
 *   POST   /v1/capture       { hooks, endpoint?, filter?, count } -> { id }
 *   GET    /v1/capture/:id   { records: [{ hook, tsUs, data, comment }], done, taken, lost }
 *   DELETE /v1/capture/:id
 *
 * API: captureRoutes(dp) -> Routes
 */
import type { Routes } from './api-server.ts';
import type { DatapathClient } from './datapath-client.ts';
import type { CaptureOptions, CaptureRead } from '../datapath/capture.ts';

/** A captured frame as JSON. */
export interface CaptureRecordJson {
  hook: string;
  tsUs: number;
  /** The frame, base64. */
  data: string;
  comment: string;
}

export interface CaptureReadJson {
  records: CaptureRecordJson[];
  done: boolean;
  taken: number;
  lost: number;
}

/** Worker errors as HTTP statuses: unknown session or endpoint 404, bad request 400. */
function status(e: NodeJS.ErrnoException): never {
  throw Object.assign(e, { status: e.code === 'ENOENT' ? 404 : 400 });
}

function parseStart(body: unknown): CaptureOptions {
  const bad = (m: string): never => {
    throw Object.assign(new Error(m), { status: 400 });
  };
  if (typeof body !== 'object' || body === null) return bad('body: expected an object');
  const b = body as Record<string, unknown>;
  const unknown = Object.keys(b).filter((k) => !['hooks', 'endpoint', 'filter', 'count'].includes(k));
  if (unknown.length > 0) bad(`unknown field(s) ${unknown.join(', ')}`);
  if (!Array.isArray(b['hooks']) || !b['hooks'].every((h) => typeof h === 'string')) bad('hooks: expected a list of hook names');
  if (b['endpoint'] !== undefined && !Number.isInteger(b['endpoint'])) bad('endpoint: expected an endpoint ID');
  if (b['filter'] !== undefined && typeof b['filter'] !== 'string') bad('filter: expected a string');
  if (!Number.isInteger(b['count'])) bad('count: expected an integer');
  return b as unknown as CaptureOptions;
}

const capId = (id: string | undefined): number => {
  const n = Number(id);
  if (!Number.isInteger(n) || n <= 0) throw Object.assign(new Error(`capture ${id}: bad id`), { status: 400 });
  return n;
};

export function captureRoutes(dp: DatapathClient): Routes {
  return {
    'POST /v1/capture': ({ body }) => dp.request({ op: 'captureStart', capture: parseStart(body) }).catch(status),
    'GET /v1/capture/:id': async ({ id }): Promise<CaptureReadJson> => {
      const r = (await dp.request({ op: 'captureRead', capId: capId(id) }).catch(status)) as CaptureRead;
      return { ...r, records: r.records.map((x) => ({ hook: x.hook, tsUs: x.tsUs, comment: x.comment, data: Buffer.from(x.data).toString('base64') })) };
    },
    'DELETE /v1/capture/:id': ({ id }) => dp.request({ op: 'captureStop', capId: capId(id) }).catch(status),
  };
}
