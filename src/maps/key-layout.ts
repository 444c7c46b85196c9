/**
 * Declarative fixed-record layouts for map keys and values (control path).
 *
 * API: defineLayout(spec) → Layout { size, offsets, fields, alloc, read,
 * write, get, set, format }; types FieldType, LayoutSpec, LayoutRecord.
 *
 *   const CT_TUPLE4 = defineLayout({
 *     daddr: 'u32be', saddr: 'u32be', dport: 'u16be', sport: 'u16be',
 *     nexthdr: 'u8', flags: 'u8',
 *   });                              // size 14, like struct ipv4_ct_tuple
 *   CT_TUPLE4.offsets.dport          // 8: what the packet path writes at
 *
 * Counterpart: the C structs in Cilium's bpf/lib/common.h and Katran's
 * balancer_structs.h — declared once, one comment per field at the use site.
 *
 * Layouts are *packed*, in declaration order, exactly like the
 * `__attribute__((packed))` C structs they mirror: no implicit padding or
 * alignment is ever added. Where the C struct has padding (explicit `pad`
 * members or compiler alignment), declare it with 'pad' / 'padN' entries;
 * their names are placeholders and they read as nothing and write as zero.
 *
 * Field types: u8; u16/u32/u64 in host order (= little-endian; Tapestry
 * assumes an LE host, as the kernel on x86-64/arm64) or explicit le/be;
 * 'bytesN' for N raw bytes (IPv6 addresses, MACs); 'pad' (1 byte) / 'padN'.
 * u64 fields read as bigint; bytes fields read as a copy.
 *
 * The packet path does not use read()/write(): it writes bytes directly at
 * `layout.offsets.x` into a scratch key (allocation-free); this helper exists
 * for dumps, tests and CLI formatting.
 */

/** A field type: integer with byte order, raw bytes, or padding. */
export type FieldType =
  | 'u8' | 'u16' | 'u16le' | 'u16be' | 'u32' | 'u32le' | 'u32be' | 'u64' | 'u64le' | 'u64be'
  | 'pad' | `pad${number}` | `bytes${number}`;

/** Field name → type, in C declaration order. */
export type LayoutSpec = Record<string, FieldType>;

type FieldValue<T> = T extends `u64${string}` ? bigint : T extends `bytes${number}` ? Uint8Array : number;
type IsPad<T> = T extends 'pad' | `pad${number}` ? true : false;

/** The JS object a layout reads to and writes from (padding fields omitted). */
export type LayoutRecord<S extends LayoutSpec> = {
  [K in keyof S as IsPad<S[K]> extends true ? never : K]: FieldValue<S[K]>;
};

/** One resolved field. */
export interface FieldInfo {
  /** Field name as declared. */
  readonly name: string;
  /** Field type as declared. */
  readonly type: FieldType;
  /** Byte offset within the record. */
  readonly offset: number;
  /** Size in bytes. */
  readonly size: number;
  /** True for padding. */
  readonly pad: boolean;
}

/** A packed fixed-size record layout. */
export interface Layout<S extends LayoutSpec> {
  /** Record size in bytes (sum of field sizes: packed). */
  readonly size: number;
  /** Byte offset of every field (padding included). */
  readonly offsets: { readonly [K in keyof S]: number };
  /** Fields in declaration order. */
  readonly fields: readonly FieldInfo[];
  /** A new zeroed record buffer. */
  alloc(): Uint8Array;
  /** Decode the record at `buf[off ..]`. */
  read(buf: Uint8Array, off?: number): LayoutRecord<S>;
  /** Encode the given fields at `buf[off ..]` (others untouched; padding zeroed); returns buf. */
  write(rec: Partial<LayoutRecord<S>>, buf?: Uint8Array, off?: number): Uint8Array;
  /** Read one field. */
  get<K extends keyof LayoutRecord<S>>(buf: Uint8Array, off: number, name: K): LayoutRecord<S>[K];
  /** Write one field. */
  set<K extends keyof LayoutRecord<S>>(buf: Uint8Array, off: number, name: K, v: LayoutRecord<S>[K]): void;
  /** "name=value name=value" for debugging (bytes in hex, numbers in decimal). */
  format(buf: Uint8Array, off?: number): string;
}

const INT_SIZES: Record<string, number> = { u8: 1, u16: 2, u32: 4, u64: 8 };

function fieldSize(type: string): number {
  if (type === 'pad') return 1;
  const m = /^(u8|u16|u32|u64)(le|be)?$/.exec(type);
  if (m) return INT_SIZES[m[1]!]!;
  const p = /^(pad|bytes)([1-9][0-9]*)$/.exec(type);
  if (p) return Number(p[2]);
  throw new TypeError(`defineLayout: unknown field type "${type}"`);
}

function hex(b: Uint8Array): string {
  let s = '';
  for (const x of b) s += x.toString(16).padStart(2, '0');
  return s;
}

function dv(buf: Uint8Array): DataView {
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
}

function readField(f: FieldInfo, buf: Uint8Array, off: number): number | bigint | Uint8Array {
  const o = off + f.offset, le = !f.type.endsWith('be');
  if (f.type.startsWith('bytes')) return buf.slice(o, o + f.size);
  switch (f.size) {
    case 1: return buf[o]!;
    case 2: return dv(buf).getUint16(o, le);
    case 4: return dv(buf).getUint32(o, le);
    default: return dv(buf).getBigUint64(o, le);
  }
}

function writeField(f: FieldInfo, buf: Uint8Array, off: number, v: unknown): void {
  const o = off + f.offset, le = !f.type.endsWith('be');
  if (f.pad) {
    buf.fill(0, o, o + f.size);
    return;
  }
  if (f.type.startsWith('bytes')) {
    const b = v as Uint8Array;
    if (!(b instanceof Uint8Array) || b.length !== f.size) throw new TypeError(`${f.name}: expected ${f.size} bytes`);
    buf.set(b, o);
    return;
  }
  switch (f.size) {
    case 1: buf[o] = Number(v); break;
    case 2: dv(buf).setUint16(o, Number(v), le); break;
    case 4: dv(buf).setUint32(o, Number(v), le); break;
    default: dv(buf).setBigUint64(o, BigInt(v as bigint | number), le); break;
  }
}

/** Build a packed layout from `{ name: type }` in C declaration order. */
export function defineLayout<const S extends LayoutSpec>(spec: S): Layout<S> {
  const fields: FieldInfo[] = [];
  const offsets: Record<string, number> = {};
  let size = 0;
  for (const [name, type] of Object.entries(spec)) {
    const n = fieldSize(type);
    fields.push(Object.freeze({ name, type, offset: size, size: n, pad: type === 'pad' || type.startsWith('pad') }));
    offsets[name] = size;
    size += n;
  }
  const byName = new Map(fields.map((f) => [f.name, f]));
  const field = (name: PropertyKey): FieldInfo => {
    const f = byName.get(String(name));
    if (!f || f.pad) throw new TypeError(`layout: no field "${String(name)}"`);
    return f;
  };

  const layout: Layout<S> = {
    size,
    offsets: Object.freeze(offsets) as Layout<S>['offsets'],
    fields: Object.freeze(fields),
    alloc: () => new Uint8Array(size),
    read(buf, off = 0) {
      const rec: Record<string, unknown> = {};
      for (const f of fields) if (!f.pad) rec[f.name] = readField(f, buf, off);
      return rec as LayoutRecord<S>;
    },
    write(rec, buf = new Uint8Array(size), off = 0) {
      for (const f of fields) {
        const v = (rec as Record<string, unknown>)[f.name];
        if (f.pad || v !== undefined) writeField(f, buf, off, v);
      }
      return buf;
    },
    get(buf, off, name) {
      return readField(field(name), buf, off) as never;
    },
    set(buf, off, name, v) {
      writeField(field(name), buf, off, v);
    },
    format(buf, off = 0) {
      const parts: string[] = [];
      for (const f of fields) {
        if (f.pad) continue;
        const v = readField(f, buf, off);
        parts.push(`${f.name}=${v instanceof Uint8Array ? hex(v) : String(v)}`);
      }
      return parts.join(' ');
    },
  };
  return Object.freeze(layout);
}
