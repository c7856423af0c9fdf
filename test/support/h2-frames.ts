import { once } from 'node:events';
import { connect, type TLSSocket } from 'node:tls';

/**
 * A raw HTTP/2 client for the shapes Node's own client refuses to send (uppercase names, CONNECT
 * with a path, a Content-Length the DATA disagrees with, duplicate pseudo-headers). It writes frames
 * byte by byte and HPACK-encodes every field as a literal never indexed (RFC 7541 §6.2.3), so any
 * name or value goes on the wire as given; of the answers it reads only what tests need: RST_STREAM,
 * GOAWAY and the :status of a HEADERS frame.
 */

export const FRAME = { DATA: 0, HEADERS: 1, RST_STREAM: 3, SETTINGS: 4, PING: 6, GOAWAY: 7, WINDOW_UPDATE: 8 } as const;
export const FLAG = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4 } as const;
const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export interface Frame {
  type: number;
  flags: number;
  stream: number;
  payload: Buffer;
}

export function frame(type: number, flags: number, stream: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(stream & 0x7fffffff, 5);
  return Buffer.concat([head, payload]);
}

/** RFC 7541 §5.1: an integer with an N-bit prefix. */
function integer(value: number, prefixBits: number, firstByte: number): Buffer {
  const max = (1 << prefixBits) - 1;
  if (value < max) return Buffer.from([firstByte | value]);
  const bytes = [firstByte | max];
  let rest = value - max;
  while (rest >= 128) {
    bytes.push((rest % 128) + 128);
    rest = Math.floor(rest / 128);
  }
  bytes.push(rest);
  return Buffer.from(bytes);
}

function literal(text: string): Buffer {
  const bytes = Buffer.from(text, 'latin1');
  return Buffer.concat([integer(bytes.length, 7, 0), bytes]);
}

/** A header block of literal fields, in the order given (pseudo-headers included, duplicates kept). */
export function headerBlock(fields: ReadonlyArray<readonly [string, string]>): Buffer {
  return Buffer.concat(fields.flatMap(([name, value]) => [Buffer.from([0x10]), literal(name), literal(value)]));
}

/** Huffman codes of the ten digits (RFC 7541 Appendix B): enough to read a :status. */
const DIGIT_CODES = new Map<string, string>([
  ['00000', '0'], ['00001', '1'], ['00010', '2'], ['011001', '3'], ['011010', '4'],
  ['011011', '5'], ['011100', '6'], ['011101', '7'], ['011110', '8'], ['011111', '9'],
]);
/** Static table entries 8-14 (RFC 7541 Appendix A). */
const STATIC_STATUS = new Map<number, number>([[8, 200], [9, 204], [10, 206], [11, 304], [12, 400], [13, 404], [14, 500]]);

/**
 * The :status of a response header block, which a server sends first (RFC 9113 §8.3): an indexed
 * static entry, or a literal with the :status name, its value plain or Huffman-coded.
 */
export function statusOf(block: Buffer): number {
  const first = block[0] as number;
  if ((first & 0x80) !== 0) {
    const status = STATIC_STATUS.get(first & 0x7f);
    if (status === undefined) throw new Error(`first field is not a static :status (index ${first & 0x7f})`);
    return status;
  }
  // Literal with incremental indexing (01xxxxxx, 6-bit index) or without / never indexed (4-bit index).
  const index = (first & 0x40) !== 0 ? first & 0x3f : first & 0x0f;
  if (index < 8 || index > 14) throw new Error(`first field is not :status (name index ${index})`);
  const lengthByte = block[1] as number;
  const length = lengthByte & 0x7f;
  const value = block.subarray(2, 2 + length);
  if ((lengthByte & 0x80) === 0) return Number(value.toString('latin1'));
  let bits = '';
  for (const byte of value) bits += byte.toString(2).padStart(8, '0');
  let digits = '';
  let code = '';
  for (const bit of bits) {
    code += bit;
    const digit = DIGIT_CODES.get(code);
    if (digit !== undefined) {
      digits += digit;
      code = '';
    }
    if (digits.length === 3) break;
  }
  return Number(digits);
}

/** A TLS connection that negotiated h2, with its frames read as they come. */
export class RawH2 {
  readonly socket: TLSSocket;
  readonly frames: Frame[] = [];
  #buf = Buffer.alloc(0);
  #waiters: Array<() => void> = [];
  closed = false;

  private constructor(socket: TLSSocket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => this.#read(chunk));
    socket.on('error', () => {});
    socket.on('close', () => {
      this.closed = true;
      this.#wake();
    });
  }

  static async open(port: number, servername: string, ca: string): Promise<RawH2> {
    const socket = connect({ host: '127.0.0.1', port, servername, ca, ALPNProtocols: ['h2'] });
    await once(socket, 'secureConnect');
    if (socket.alpnProtocol !== 'h2') throw new Error(`ALPN gave ${String(socket.alpnProtocol)}, not h2`);
    const raw = new RawH2(socket);
    socket.write(Buffer.concat([PREFACE, frame(FRAME.SETTINGS, 0, 0)]));
    return raw;
  }

  send(...frames: Buffer[]): void {
    this.socket.write(Buffer.concat(frames));
  }

  /** One HEADERS frame holding the whole block. */
  headers(stream: number, fields: ReadonlyArray<readonly [string, string]>, endStream: boolean): void {
    this.send(frame(FRAME.HEADERS, FLAG.END_HEADERS | (endStream ? FLAG.END_STREAM : 0), stream, headerBlock(fields)));
  }

  data(stream: number, bytes: Buffer | string, endStream: boolean): void {
    this.send(frame(FRAME.DATA, endStream ? FLAG.END_STREAM : 0, stream, Buffer.from(bytes)));
  }

  /** Waits (within `ms`, a generous bound) for the first frame that matches. */
  async waitFor(what: string, match: (f: Frame) => boolean, ms = 20_000): Promise<Frame> {
    const deadline = Date.now() + ms;
    for (;;) {
      const found = this.frames.find(match);
      if (found !== undefined) return found;
      if (this.closed) throw new Error(`connection closed before ${what}`);
      if (Date.now() > deadline) throw new Error(`no ${what} within ${ms} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(0, deadline - Date.now()));
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /**
   * How the server ended a stream it would not serve: `rst:CODE` for RST_STREAM, `status:N` for an
   * answer, `goaway:CODE` when the whole connection went, `closed` when it went without a word.
   */
  async outcome(stream: number): Promise<string> {
    let f: Frame;
    try {
      f = await this.waitFor(`an end of stream ${stream}`, (x) => ((x.type === FRAME.RST_STREAM || x.type === FRAME.HEADERS) && x.stream === stream) || x.type === FRAME.GOAWAY);
    } catch (err) {
      if (this.closed) return 'closed';
      throw err;
    }
    if (f.type === FRAME.RST_STREAM) return `rst:${f.payload.readUInt32BE(0)}`;
    if (f.type === FRAME.GOAWAY) return `goaway:${f.payload.readUInt32BE(4)}`;
    return `status:${statusOf(f.payload)}`;
  }

  close(): void {
    this.socket.destroy();
  }

  #read(chunk: Buffer): void {
    this.#buf = Buffer.concat([this.#buf, chunk]);
    while (this.#buf.length >= 9) {
      const length = this.#buf.readUIntBE(0, 3);
      if (this.#buf.length < 9 + length) break;
      const f: Frame = { type: this.#buf[3] as number, flags: this.#buf[4] as number, stream: this.#buf.readUInt32BE(5) & 0x7fffffff, payload: this.#buf.subarray(9, 9 + length) };
      this.#buf = this.#buf.subarray(9 + length);
      // The server's SETTINGS must be acknowledged or it may end the connection.
      if (f.type === FRAME.SETTINGS && (f.flags & FLAG.ACK) === 0) this.socket.write(frame(FRAME.SETTINGS, FLAG.ACK, 0));
      this.frames.push(f);
    }
    this.#wake();
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }
}
