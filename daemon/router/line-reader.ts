import type { Socket } from 'node:net';
import { StringDecoder } from 'node:string_decoder';

/**
 * Calls `onLine` for every complete line read from `socket`, in order. A multi-byte character split
 * across chunks is held back by the decoder; a line growing past `maxBytes` ends the connection
 * rather than memory (the peer is not speaking our protocol).
 */
export function readLines(socket: Socket, maxBytes: number, onLine: (line: string) => void, onTooLong: () => void): void {
  const decoder = new StringDecoder('utf8');
  let rest = '';
  socket.on('data', (chunk: Buffer) => {
    rest += decoder.write(chunk);
    const lines = rest.split('\n');
    rest = lines.pop() ?? '';
    if (rest.length > maxBytes) {
      onTooLong();
      socket.destroy();
      return;
    }
    for (const line of lines) {
      if (socket.destroyed) return;
      if (line.trim() !== '') onLine(line);
    }
  });
}
