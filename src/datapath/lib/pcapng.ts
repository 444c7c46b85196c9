/**
 * pcapng writer (draft-ietf-opsawg-pcapng): one Section Header Block, one
 * Interface Description Block per capture point, Enhanced Packet Blocks
 * with µs timestamps and an opt_comment each. Pure: bytes in, bytes out.
 *
 * API:
 *   new PcapngWriter()
 *   w.addInterface(name, linktype?) -> interface id   IDB with if_name (LINKTYPE_ETHERNET by default)
 *   w.addPacket(iface, tsUs, data, comment?)          EPB; tsUs = µs since the epoch
 *   w.bytes()                                         the whole file
 *
 * Every block is little-endian and padded to 32 bits:
 *
 *   +------------+--------------+------ body ------+---------+--------------+
 *   | type (u32) | length (u32) | fields, options  | padding | length (u32) |
 *   +------------+--------------+------------------+---------+--------------+
 */

/** Block types. */
export const BLOCK = { SHB: 0x0a0d0d0a, IDB: 0x00000001, EPB: 0x00000006 } as const;
/** Option codes. */
export const OPT = { ENDOFOPT: 0, COMMENT: 1, IF_NAME: 2 } as const;
/** tcpdump.org link types. */
export const LINKTYPE_ETHERNET = 1;
const BYTE_ORDER_MAGIC = 0x1a2b3c4d;
const SNAPLEN = 262144;

const pad4 = (n: number): number => (n + 3) & ~3;
const utf8 = new TextEncoder();

/** Options as (code, bytes) pairs, each padded, ended by opt_endofopt; empty when there are none. */
function encodeOptions(opts: readonly (readonly [number, Uint8Array])[]): Uint8Array {
  if (opts.length === 0) return new Uint8Array(0);
  let len = 4;
  for (const [, v] of opts) len += 4 + pad4(v.length);
  const out = new Uint8Array(len);
  const dv = new DataView(out.buffer);
  let o = 0;
  for (const [code, v] of opts) {
    dv.setUint16(o, code, true);
    dv.setUint16(o + 2, v.length, true);
    out.set(v, o + 4);
    o += 4 + pad4(v.length);
  }
  // opt_endofopt: code 0, length 0 (already zero).
  return out;
}

/** One block: type, length, body (padded), length again. */
function block(type: number, body: Uint8Array): Uint8Array {
  const total = 12 + pad4(body.length);
  const out = new Uint8Array(total);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, type, true);
  dv.setUint32(4, total, true);
  out.set(body, 8);
  dv.setUint32(total - 4, total, true);
  return out;
}

/** Builds a pcapng file in memory. */
export class PcapngWriter {
  private readonly blocks: Uint8Array[] = [];
  private nIf = 0;

  constructor() {
    const body = new Uint8Array(16);
    const dv = new DataView(body.buffer);
    dv.setUint32(0, BYTE_ORDER_MAGIC, true);
    dv.setUint16(4, 1, true); // major
    dv.setUint16(6, 0, true); // minor
    dv.setBigInt64(8, -1n, true); // section length: unknown
    this.blocks.push(block(BLOCK.SHB, body));
  }

  /** Add an interface (IDB with if_name); returns its id for addPacket. */
  addInterface(name: string, linktype = LINKTYPE_ETHERNET): number {
    const opts = encodeOptions([[OPT.IF_NAME, utf8.encode(name)]]);
    const body = new Uint8Array(8 + opts.length);
    const dv = new DataView(body.buffer);
    dv.setUint16(0, linktype, true);
    dv.setUint32(4, SNAPLEN, true);
    body.set(opts, 8);
    this.blocks.push(block(BLOCK.IDB, body));
    return this.nIf++;
  }

  /** Add one packet on interface `iface` at `tsUs` (µs since the epoch; if_tsresol defaults to µs). */
  addPacket(iface: number, tsUs: number, data: Uint8Array, comment?: string): void {
    if (iface < 0 || iface >= this.nIf) throw new RangeError(`pcapng: no interface ${iface}`);
    const opts = encodeOptions(comment ? [[OPT.COMMENT, utf8.encode(comment)]] : []);
    const dataLen = pad4(data.length);
    const body = new Uint8Array(20 + dataLen + opts.length);
    const dv = new DataView(body.buffer);
    const ts = BigInt(Math.max(0, Math.round(tsUs)));
    dv.setUint32(0, iface, true);
    dv.setUint32(4, Number(ts >> 32n), true);
    dv.setUint32(8, Number(ts & 0xffffffffn), true);
    dv.setUint32(12, data.length, true); // captured length
    dv.setUint32(16, data.length, true); // original length
    body.set(data, 20);
    body.set(opts, 20 + dataLen);
    this.blocks.push(block(BLOCK.EPB, body));
  }

  /** The file so far. */
  bytes(): Uint8Array {
    let len = 0;
    for (const b of this.blocks) len += b.length;
    const out = new Uint8Array(len);
    let o = 0;
    for (const b of this.blocks) {
      out.set(b, o);
      o += b.length;
    }
    return out;
  }
}
