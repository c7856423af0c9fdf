import type { Logger } from '../log.js';

/** Open client connections allowed from one address, and in all; RouterOptions may change both. */
export const PER_ADDRESS_MAX = 256;
export const TOTAL_MAX = 10_000;
/** A refused address is logged at most once in this long, however many connections it opens. */
const LOG_INTERVAL_MS = 60_000;

/**
 * The open client connections per address and in all, so one client (or a flood) cannot take every
 * file descriptor and the memory each connection costs. Connections are counted from accept to
 * close, TLS handshakes included.
 */
export class ConnectionCaps {
  readonly #perAddress: number;
  readonly #total: number;
  readonly #logger: Logger;
  readonly #open = new Map<string, number>();
  #count = 0;
  /** When each refused address ('' for the total cap) was last logged; swept as it is written, so it stays small. */
  readonly #logged = new Map<string, number>();

  constructor(limits: { perAddress: number; total: number }, logger: Logger) {
    this.#perAddress = limits.perAddress;
    this.#total = limits.total;
    this.#logger = logger;
  }

  /** Counts the connection in, or answers false (and logs, now and then) when it is over a cap. */
  admit(address: string): boolean {
    const open = this.#open.get(address) ?? 0;
    const which = this.#count >= this.#total ? 'total' : open >= this.#perAddress ? 'address' : undefined;
    if (which !== undefined) {
      this.#logRefusal(address, which);
      return false;
    }
    this.#open.set(address, open + 1);
    this.#count += 1;
    return true;
  }

  release(address: string): void {
    const open = this.#open.get(address) ?? 0;
    if (open <= 1) this.#open.delete(address);
    else this.#open.set(address, open - 1);
    this.#count -= 1;
  }

  #logRefusal(address: string, which: 'total' | 'address'): void {
    const now = Date.now();
    // Over the total cap, a flood from many addresses is still one line an interval.
    const key = which === 'total' ? '' : address;
    const last = this.#logged.get(key);
    if (last !== undefined && now - last < LOG_INTERVAL_MS) return;
    if (this.#logged.size > 1000) {
      for (const [a, at] of this.#logged) if (now - at >= LOG_INTERVAL_MS) this.#logged.delete(a);
    }
    this.#logged.set(key, now);
    const limit = which === 'total' ? this.#total : this.#perAddress;
    this.#logger.warn({ address, open: this.#open.get(address) ?? 0, total: this.#count, limit, cap: which }, 'router: refusing connections over the cap');
  }
}
