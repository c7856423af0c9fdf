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
  private readonly lines: string[] = [];
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
    const size = Buffer.byteLength(line) + 1;
    if (this.bytes + size > this.limit) {
      this.cut = true;
      this.lines.push(TRUNCATED);
      onCut?.(TRUNCATED);
      return false;
    }
    this.bytes += size;
    this.lines.push(line);
    return true;
  }

  /** One of rack's own lines: always kept. */
  note(line: string): void {
    this.bytes += Buffer.byteLength(line) + 1;
    this.lines.push(line);
  }

  text(): string {
    return this.lines.join('\n');
  }
}
