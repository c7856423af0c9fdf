import { carriesBody, HeadError, type Framing } from './http1-head.js';

const enum Chunk {
  Size,
  Extension,
  SizeLf,
  Data,
  DataCr,
  DataLf,
  TrailerStart,
  TrailerLine,
  TrailerLf,
  EndLf,
  Done,
}

/** A chunk size above this (2^48 bytes) is no real body; it only tests the arithmetic. */
const MAX_CHUNK_HEX_DIGITS = 12;

/**
 * Follows one message body through the bytes that carry it, without copying them: it says how
 * many bytes of each read belong to the body and when the body is over, so the router relays
 * the bytes as they came and knows where the next message starts. Chunked bodies are checked
 * strictly as they pass (RFC 9112 §7.1); a malformed one is an error, never a guess.
 */
export class BodyFramer {
  readonly #kind: Framing['kind'];
  #remaining: number;
  #chunk = Chunk.Size;
  #sizeDigits = 0;
  #trailerBytes = 0;
  #done: boolean;
  readonly #status: number;
  readonly #onChunkData: ((buf: Buffer, start: number, end: number) => void) | undefined;

  /**
   * `status`: what a malformed body is answered with (400 from a client, 502 from an app).
   * `onChunkData`: told each run of a chunked body's data bytes, without the chunk framing
   * around them, for a relay that re-frames the body (HTTP/2 carries it in DATA frames).
   */
  constructor(framing: Framing, status: number, onChunkData?: (buf: Buffer, start: number, end: number) => void) {
    this.#kind = framing.kind;
    this.#remaining = framing.kind === 'length' ? framing.length : 0;
    this.#done = !carriesBody(framing);
    this.#status = status;
    this.#onChunkData = onChunkData;
  }

  get done(): boolean {
    return this.#done;
  }

  /** Bytes of `buf` from `start` that belong to this body; once it returns short, the body is done. */
  take(buf: Buffer, start: number): number {
    if (this.#done) return 0;
    const available = buf.length - start;
    if (this.#kind === 'close') return available;
    if (this.#kind === 'length') {
      const n = Math.min(available, this.#remaining);
      this.#remaining -= n;
      if (this.#remaining === 0) this.#done = true;
      return n;
    }
    let i = start;
    while (i < buf.length && !this.#done) {
      if (this.#chunk === Chunk.Data) {
        const n = Math.min(buf.length - i, this.#remaining);
        this.#remaining -= n;
        this.#onChunkData?.(buf, i, i + n);
        i += n;
        if (this.#remaining === 0) this.#chunk = Chunk.DataCr;
        continue;
      }
      this.#step(buf[i] as number);
      i += 1;
    }
    return i - start;
  }

  #fail(message: string): never {
    throw new HeadError(this.#status, `malformed chunked body: ${message}`);
  }

  #step(byte: number): void {
    switch (this.#chunk) {
      case Chunk.Size: {
        const digit = hexValue(byte);
        if (digit !== -1) {
          if (++this.#sizeDigits > MAX_CHUNK_HEX_DIGITS) this.#fail('chunk size too large');
          this.#remaining = this.#remaining * 16 + digit;
        } else if (this.#sizeDigits === 0) {
          this.#fail('chunk size expected');
        } else if (byte === 0x3b /* ; */) {
          this.#chunk = Chunk.Extension;
        } else if (byte === 0x0d) {
          this.#chunk = Chunk.SizeLf;
        } else {
          this.#fail('bad chunk size');
        }
        return;
      }
      case Chunk.Extension:
        if (byte === 0x0d) this.#chunk = Chunk.SizeLf;
        else if (byte === 0x0a || byte === 0x00) this.#fail('bad chunk extension');
        return;
      case Chunk.SizeLf:
        if (byte !== 0x0a) this.#fail('CRLF expected after the chunk size');
        this.#sizeDigits = 0;
        this.#chunk = this.#remaining === 0 ? Chunk.TrailerStart : Chunk.Data;
        return;
      case Chunk.DataCr:
        if (byte !== 0x0d) this.#fail('CRLF expected after chunk data');
        this.#chunk = Chunk.DataLf;
        return;
      case Chunk.DataLf:
        if (byte !== 0x0a) this.#fail('CRLF expected after chunk data');
        this.#chunk = Chunk.Size;
        return;
      case Chunk.TrailerStart:
        if (byte === 0x0d) {
          this.#chunk = Chunk.EndLf;
          return;
        }
        this.#chunk = Chunk.TrailerLine;
        this.#trailer(byte);
        return;
      case Chunk.TrailerLine:
        this.#trailer(byte);
        return;
      case Chunk.TrailerLf:
        if (byte !== 0x0a) this.#fail('CRLF expected after a trailer');
        this.#chunk = Chunk.TrailerStart;
        return;
      case Chunk.EndLf:
        if (byte !== 0x0a) this.#fail('CRLF expected at the end');
        this.#chunk = Chunk.Done;
        this.#done = true;
        return;
      default:
        this.#fail('bytes after the end');
    }
  }

  #trailer(byte: number): void {
    if (++this.#trailerBytes > 16 * 1024) this.#fail('trailers too large');
    if (byte === 0x0d) this.#chunk = Chunk.TrailerLf;
    else if (byte === 0x0a || byte === 0x00) this.#fail('bad trailer');
  }
}

function hexValue(byte: number): number {
  if (byte >= 0x30 && byte <= 0x39) return byte - 0x30;
  if (byte >= 0x41 && byte <= 0x46) return byte - 0x37;
  if (byte >= 0x61 && byte <= 0x66) return byte - 0x57;
  return -1;
}
