import type { Socket } from 'node:net';
import { lineSplitter } from '../line-splitter.js';

/**
 * Calls `onLine` for every complete, non-blank line read from `socket`, in order. A line growing
 * past `maxBytes` ends the connection rather than memory (the peer is not speaking our protocol).
 */
export function readLines(socket: Socket, maxBytes: number, onLine: (line: string) => void, onTooLong: () => void): void {
  const lines = lineSplitter(
    (line) => {
      if (!socket.destroyed && line.trim() !== '') onLine(line);
    },
    {
      maxLine: maxBytes,
      onTooLong: () => {
        onTooLong();
        socket.destroy();
      },
    },
  );
  socket.on('data', (chunk: Buffer) => lines.push(chunk));
}
