/** The marker line that ends a build log cut at its limit. */
export const TRUNCATED = '... output truncated';

/** A build log is kept whole up to this many bytes (of UTF-8 text). */
export const BUILD_LOG_LIMIT = 10 * 1024 * 1024;

/**
 * The log of one build, kept up to a byte limit. Past the limit, build output is dropped (once
 * replaced by the marker line) while rack's own few lines (headers, errors) are still kept, so the
 * record always ends with how the build ended. Memory stays bounded whatever a build prints.
 */
export class BuildLog {
  // Bytes, not strings: a line split out of a chunk can keep the whole chunk alive, and each
  // small string costs more than its text. Pages of 1 MiB are taken as the log grows.
  private readonly kept: Buffer[] = [];
  private used = 0; // bytes used in the last page
  private bytes = 0;
  private cut = false;

  constructor(private readonly limit = BUILD_LOG_LIMIT) {}

  get truncated(): boolean {
    return this.cut;
  }

  /**
   * Keeps a line of build output; false when it was dropped. The first dropped line is replaced
   * by the marker, which `onCut` is also given (the user sees it too).
   */
  output(line: string, onCut?: (marker: string) => void): boolean {
    if (this.cut) return false;
    if (this.bytes + Buffer.byteLength(line) + 1 > this.limit) {
      this.cut = true;
      this.append(TRUNCATED);
      onCut?.(TRUNCATED);
      return false;
    }
    this.append(line);
    return true;
  }

  /** One of rack's own lines: always kept. */
  note(line: string): void {
    this.append(line);
  }

  /** The log as it is kept, page by page, without copying it whole (the last newline dropped). */
  pages(): Buffer[] {
    const out = this.kept.map((p, i) => (i === this.kept.length - 1 ? p.subarray(0, this.used) : p));
    const last = out.length - 1;
    if (last >= 0 && out[last]!.length > 0) out[last] = out[last]!.subarray(0, out[last]!.length - 1);
    return out.filter((p) => p.length > 0);
  }

  text(): string {
    const all = Buffer.concat(this.kept.map((p, i) => (i === this.kept.length - 1 ? p.subarray(0, this.used) : p)));
    return all.toString('utf8', 0, Math.max(0, all.length - 1)); // without the last newline
  }

  private append(line: string): void {
    const data = Buffer.from(`${line}\n`);
    this.bytes += data.length;
    let offset = 0;
    while (offset < data.length) {
      let page = this.kept[this.kept.length - 1];
      if (!page || this.used === page.length) {
        page = Buffer.allocUnsafe(PAGE);
        this.kept.push(page);
        this.used = 0;
      }
      const n = data.copy(page, this.used, offset);
      this.used += n;
      offset += n;
    }
  }
}

const PAGE = 1024 * 1024;
