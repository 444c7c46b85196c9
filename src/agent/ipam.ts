/**
 * IPAM: hands out pod addresses from the node's pod CIDRs (Cilium's
 * cluster-pool style, one node). Skips the network address, the router IP
 * and, for IPv4, the broadcast address; explicit addresses are reserved.
 *
 * API: new Ipam(cidr, reserved[]), allocate(owner) / reserve(ip, owner) / release(ip) / used / capacity
 */
import { type Cidr, ipToBigInt } from './cidr.ts';

/** Allocator over one prefix. */
export class Ipam {
  private readonly owners = new Map<string, string>();
  private cursor = 2n;

  constructor(
    readonly cidr: Cidr,
    private readonly excluded: readonly string[],
  ) {}

  /** Addresses handed out or reserved. */
  get used(): number {
    return this.owners.size;
  }

  /** Addresses that can be handed out (network, router and broadcast excluded). */
  get capacity(): bigint {
    const reservedV4 = this.cidr.family === 4 ? 2n : 1n;
    return this.cidr.size - reservedV4 - BigInt(this.excluded.length);
  }

  /** Reserve a specific address; throws if taken or excluded. */
  reserve(ip: string, owner: string): void {
    if (this.excluded.includes(ip)) throw new Error(`${ip} is reserved for the router`);
    const cur = this.owners.get(ip);
    if (cur !== undefined && cur !== owner) throw new Error(`${ip} is already allocated to ${cur}`);
    this.owners.set(ip, owner);
  }

  /** Next free address, or throws when the prefix is exhausted. */
  allocate(owner: string): string {
    const size = this.cidr.size;
    const last = this.cidr.family === 4 ? size - 1n : size;
    for (let tries = 0n; tries < size; tries++) {
      const n = this.cursor;
      this.cursor = this.cursor + 1n >= last ? 1n : this.cursor + 1n;
      if (n < 1n || n >= last) continue;
      const ip = this.cidr.nth(n);
      if (this.excluded.includes(ip) || this.owners.has(ip)) continue;
      this.owners.set(ip, owner);
      return ip;
    }
    throw new Error(`IPAM: no free address left in ${this.cidr.toString()}`);
  }

  /** Give an address back. */
  release(ip: string): void {
    this.owners.delete(ip);
  }

  /** Is `ip` handed out? */
  has(ip: string): boolean {
    return this.owners.has(ip) || this.excluded.includes(ip) || ipToBigInt(ip) === this.cidr.base;
  }
}
