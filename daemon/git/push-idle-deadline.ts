/**
 * The deadline on a push's silence: a client that opens `git-receive-pack` and sends nothing would
 * otherwise hold the app's push lock for as long as it stays connected. Every byte either way
 * counts as life: the pusher's pack, and git's own output (once the pack is all in, receive-pack
 * sends a keepalive every few seconds while index-pack and the hook work, so a big pack being
 * checked is never taken for a silent client).
 *
 * `touch()` only notes the time (it runs for every chunk of a pack); the timer looks at it when it
 * fires. Once the time is up, `onQuiet` decides: it returns true when it ended the push or the push
 * is past waiting for the client, false when rack itself is behind (git has not read what came),
 * and the deadline runs again.
 */
export class PushIdleDeadline {
  private timer: NodeJS.Timeout | undefined;
  private last = Date.now();

  constructor(
    private readonly ms: number,
    private readonly onQuiet: () => boolean,
  ) {}

  start(): void {
    this.last = Date.now();
    this.arm(this.ms);
  }

  touch(): void {
    this.last = Date.now();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(delay: number): void {
    this.timer = setTimeout(() => this.fire(), delay);
    this.timer.unref();
  }

  private fire(): void {
    this.timer = undefined;
    const quiet = Date.now() - this.last;
    if (quiet < this.ms) return this.arm(this.ms - quiet);
    if (this.onQuiet()) return;
    this.start();
  }
}
