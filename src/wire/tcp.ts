/**
 * TCP header (RFC 9293 §3.1).
 *
 *    0                   1                   2                   3
 *    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *   +-------------------------------+-------------------------------+
 *   |          Source Port          |       Destination Port        |
 *   +-------------------------------+-------------------------------+
 *   |                        Sequence Number                        |
 *   |                    Acknowledgment Number                      |
 *   +-------+-------+---------------+-------------------------------+
 *   |  Data |       |C|E|U|A|P|R|S|F|                               |
 *   | Offset| Rsrvd |W|C|R|C|S|S|Y|I|            Window             |
 *   +-------+-------+---------------+-------------------------------+
 *   |           Checksum            |         Urgent Pointer        |
 *   +-------------------------------+-------------------------------+
 *
 * API: `TcpView` (bind/checkLen, ports, seq/ack, dataOffset/headerLen,
 * flags/setFlags/hasFlags, window, checksum, urgent, payloadOffset/
 * payloadLen), `field`, `TCP_HEADER_LEN`, `TCP_FLAG_*`, `tcpFlagsString`,
 * `TcpRepr` with `tcpParse`/`tcpEmit`. Bind `n` to the IP payload length so
 * payloadLen() excludes Ethernet padding.
 */


/** Byte offsets of the TCP header fields. */
export const field = {
  SRC_PORT: 0, DST_PORT: 2, SEQ_NUM: 4, ACK_NUM: 8, DATA_OFF: 12, FLAGS: 13, WIN_SIZE: 14, CHECKSUM: 16, URGENT: 18,
} as const;

/** Length of a TCP header without options. */
export const TCP_HEADER_LEN = 20;

/** FIN: no more data from sender. */
export const TCP_FLAG_FIN = 0x01;
/** SYN: synchronize sequence numbers. */
export const TCP_FLAG_SYN = 0x02;
/** RST: reset the connection. */
export const TCP_FLAG_RST = 0x04;
/** PSH: push function. */
export const TCP_FLAG_PSH = 0x08;
/** ACK: acknowledgment field significant. */
export const TCP_FLAG_ACK = 0x10;
/** URG: urgent pointer field significant. */
export const TCP_FLAG_URG = 0x20;
/** ECE: ECN-Echo (RFC 3168). */
export const TCP_FLAG_ECE = 0x40;
/** CWR: Congestion Window Reduced (RFC 3168). */
export const TCP_FLAG_CWR = 0x80;

const FLAG_LETTERS = 'FSRPAUEC';

/** Flags as letters in bit order F S R P A U E C (0x12 -> "SA"). */
export function tcpFlagsString(flags: number): string {
  let s = '';
  for (let i = 0; i < 8; i++) if (flags & (1 << i)) s += FLAG_LETTERS[i];
  return s;
}

/** Parse flag letters (any order, from "FSRPAUEC") into a flags byte; throws on others. */
export function tcpFlagsParse(s: string): number {
  let f = 0;
  for (const c of s) {
    const i = FLAG_LETTERS.indexOf(c.toUpperCase());
    if (i < 0) throw new Error(`tcp: unknown flag letter "${c}" in "${s}"`);
    f |= 1 << i;
  }
  return f;
}

/** Zero-copy view of a TCP header. */
export class TcpView {
  /** Frame bytes. */
  b!: Uint8Array;
  /** Offset of the TCP header in `b`. */
  o = 0;
  /** Bytes of the TCP segment from `o` (the IP payload length). */
  n = 0;

  /** Point the view at b[o, o+n) without any check. */
  bind(b: Uint8Array, o: number, n: number): this {
    this.b = b;
    this.o = o;
    this.n = n;
    return this;
  }

  /** The one bounds check: n >= 20 and 20 <= dataOffset*4 <= n. */
  checkLen(): boolean {
    if (this.n < TCP_HEADER_LEN) return false;
    const hl = (this.b[this.o + field.DATA_OFF] >>> 4) << 2;
    return hl >= TCP_HEADER_LEN && hl <= this.n;
  }

  /** Source port. */
  srcPort(): number {
    return (this.b[this.o] << 8) | this.b[this.o + 1];
  }

  /** Set the source port (checksum not updated). */
  setSrcPort(v: number): void {
    const i = this.o;
    this.b[i] = v >>> 8;
    this.b[i + 1] = v & 0xff;
  }

  /** Destination port. */
  dstPort(): number {
    const i = this.o + field.DST_PORT;
    return (this.b[i] << 8) | this.b[i + 1];
  }

  /** Set the destination port (checksum not updated). */
  setDstPort(v: number): void {
    const i = this.o + field.DST_PORT;
    this.b[i] = v >>> 8;
    this.b[i + 1] = v & 0xff;
  }

  /** Sequence number (u32). */
  seqNumber(): number {
    const b = this.b;
    const i = this.o + field.SEQ_NUM;
    return ((b[i] << 24) | (b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]) >>> 0;
  }

  /** Set the sequence number. */
  setSeqNumber(v: number): void {
    const b = this.b;
    const i = this.o + field.SEQ_NUM;
    b[i] = v >>> 24;
    b[i + 1] = (v >>> 16) & 0xff;
    b[i + 2] = (v >>> 8) & 0xff;
    b[i + 3] = v & 0xff;
  }

  /** Acknowledgment number (u32). */
  ackNumber(): number {
    const b = this.b;
    const i = this.o + field.ACK_NUM;
    return ((b[i] << 24) | (b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]) >>> 0;
  }

  /** Set the acknowledgment number. */
  setAckNumber(v: number): void {
    const b = this.b;
    const i = this.o + field.ACK_NUM;
    b[i] = v >>> 24;
    b[i + 1] = (v >>> 16) & 0xff;
    b[i + 2] = (v >>> 8) & 0xff;
    b[i + 3] = v & 0xff;
  }

  /** Data Offset in 32-bit words. */
  dataOffset(): number {
    return this.b[this.o + field.DATA_OFF] >>> 4;
  }

  /** Set the Data Offset (32-bit words); the reserved bits are cleared. */
  setDataOffset(v: number): void {
    this.b[this.o + field.DATA_OFF] = (v & 0x0f) << 4;
  }

  /** Header length in bytes, options included. */
  headerLen(): number {
    return (this.b[this.o + field.DATA_OFF] >>> 4) << 2;
  }

  /** The eight flag bits (TCP_FLAG_*). */
  flags(): number {
    return this.b[this.o + field.FLAGS];
  }

  /** Set the eight flag bits. */
  setFlags(v: number): void {
    this.b[this.o + field.FLAGS] = v;
  }

  /** True when every bit of `mask` is set. */
  hasFlags(mask: number): boolean {
    return (this.b[this.o + field.FLAGS] & mask) === mask;
  }

  /** Window size. */
  window(): number {
    const i = this.o + field.WIN_SIZE;
    return (this.b[i] << 8) | this.b[i + 1];
  }

  /** Set the window size. */
  setWindow(v: number): void {
    const i = this.o + field.WIN_SIZE;
    this.b[i] = v >>> 8;
    this.b[i + 1] = v & 0xff;
  }

  /** Checksum as stored. */
  checksum(): number {
    const i = this.o + field.CHECKSUM;
    return (this.b[i] << 8) | this.b[i + 1];
  }

  /** Store a checksum. */
  setChecksum(v: number): void {
    const i = this.o + field.CHECKSUM;
    this.b[i] = v >>> 8;
    this.b[i + 1] = v & 0xff;
  }

  /** Offset in `b` of the checksum field (for l4CsumReplace*). */
  checksumOff(): number {
    return this.o + field.CHECKSUM;
  }

  /** Urgent pointer. */
  urgent(): number {
    const i = this.o + field.URGENT;
    return (this.b[i] << 8) | this.b[i + 1];
  }

  /** Set the urgent pointer. */
  setUrgent(v: number): void {
    const i = this.o + field.URGENT;
    this.b[i] = v >>> 8;
    this.b[i + 1] = v & 0xff;
  }

  /** Offset in `b` of the options (if any), i.e. o + 20. */
  optionsOffset(): number {
    return this.o + TCP_HEADER_LEN;
  }

  /** Offset in `b` of the payload. */
  payloadOffset(): number {
    return this.o + this.headerLen();
  }

  /** Payload bytes: n minus the header. */
  payloadLen(): number {
    return this.n - this.headerLen();
  }
}

/** Decoded TCP header (options skipped): control path and tests. */
export interface TcpRepr {
  /** Source port. */
  srcPort: number;
  /** Destination port. */
  dstPort: number;
  /** Sequence number. */
  seq: number;
  /** Acknowledgment number. */
  ack: number;
  /** Flag bits (TCP_FLAG_*). */
  flags: number;
  /** Window size. */
  window: number;
  /** Urgent pointer, default 0. */
  urgent?: number;
  /** Payload length (view n minus header length). */
  payloadLen: number;
}

/** Read a checked header into a new Repr; throws on checkLen failure. Checksum is not verified here. */
export function tcpParse(v: TcpView): TcpRepr {
  if (!v.checkLen()) throw new Error('tcp: truncated header or bad data offset');
  return {
    srcPort: v.srcPort(), dstPort: v.dstPort(), seq: v.seqNumber(), ack: v.ackNumber(), flags: v.flags(),
    window: v.window(), urgent: v.urgent(), payloadLen: v.payloadLen(),
  };
}

/**
 * Write a 20-byte header for `r` at b[o] with checksum 0; returns 20. Fill
 * the checksum with l4CsumFill4/6 once the payload is in place.
 */
export function tcpEmit(r: TcpRepr, b: Uint8Array, o: number): number {
  const v = new TcpView().bind(b, o, TCP_HEADER_LEN);
  v.setSrcPort(r.srcPort);
  v.setDstPort(r.dstPort);
  v.setSeqNumber(r.seq);
  v.setAckNumber(r.ack);
  v.setDataOffset(5);
  v.setFlags(r.flags);
  v.setWindow(r.window);
  v.setChecksum(0);
  v.setUrgent(r.urgent ?? 0);
  return TCP_HEADER_LEN;
}
