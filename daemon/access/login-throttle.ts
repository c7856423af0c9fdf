/** How many failed logins an address may have within a window before it is turned away. */
export interface ThrottleLimit {
  failures: number;
  windowMs: number;
}

/** Addresses remembered at most; past it the stalest is forgotten, so a flood of addresses costs bounded memory. */
const MAX_ADDRESSES = 10_000;

/**
 * Slows down guessing: an address with `failures` failed logins within the last `windowMs` is
 * refused until its oldest failure ages out. Shared by every way in (ssh keys, HTTP tokens), keyed
 * by whatever the caller calls an address. A success clears nothing: a guesser who also holds one
 * valid credential (any token, a key of its own) could otherwise interleave it with its guesses and
 * never be slowed down. Failures only age out.
 */
export class LoginThrottle {
  private readonly failed = new Map<string, number[]>();

  constructor(
    private readonly limit: ThrottleLimit,
    private readonly now: () => number = Date.now,
  ) {}

  /** Whether the address is refused right now. */
  blocked(address: string): boolean {
    return this.recent(address).length >= this.limit.failures;
  }

  /** Records a failed login; true when this one made the address blocked (for a single log line). */
  fail(address: string): boolean {
    const times = this.recent(address);
    times.push(this.now());
    // Re-inserting keeps the Map in least-recently-failed order for eviction.
    this.failed.delete(address);
    this.failed.set(address, times);
    if (this.failed.size > MAX_ADDRESSES) {
      const stalest = this.failed.keys().next();
      if (!stalest.done) this.failed.delete(stalest.value);
    }
    return times.length === this.limit.failures;
  }

  /** Milliseconds until a blocked address may try again (0 when it is not blocked). */
  retryAfterMs(address: string): number {
    const times = this.recent(address);
    if (times.length < this.limit.failures) return 0;
    return times[times.length - this.limit.failures]! + this.limit.windowMs - this.now();
  }

  private recent(address: string): number[] {
    const times = this.failed.get(address);
    if (!times) return [];
    const since = this.now() - this.limit.windowMs;
    const kept = times.filter((t) => t > since);
    if (kept.length === 0) this.failed.delete(address);
    else if (kept.length !== times.length) this.failed.set(address, kept);
    return kept;
  }
}
