import { connect } from 'node:net';
import { readLines } from './line-reader.js';
import { encode, parseMessage } from './router-protocol.js';

/**
 * What the router's control socket says to a ping: `answers`, `gone` (nothing listens, or the
 * connection closed unanswered) or `silent` (no answer in time).
 */
export type RouterProbe = 'answers' | 'gone' | 'silent';

/**
 * Pings the router process on `socketPath`. A connection alone proves nothing: the kernel accepts
 * on the socket of a process that is being killed until its descriptors are closed, so a router
 * killed along with rackd still "accepts" for a moment after rackd's exit is seen.
 */
export function probeRouter(socketPath: string, timeoutMs: number): Promise<RouterProbe> {
  return new Promise((resolve) => {
    const socket = connect(socketPath);
    const done = (outcome: RouterProbe) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(outcome);
    };
    const timer = setTimeout(() => done('silent'), timeoutMs);
    socket.once('connect', () => socket.write(encode({ id: 1, method: 'ping', params: {} })));
    readLines(
      socket,
      64 * 1024,
      (line) => {
        const msg = parseMessage(line);
        if (msg !== undefined && 'id' in msg && !('method' in msg) && msg.id === 1) done('answers');
      },
      () => done('gone'),
    );
    socket.once('error', () => done('gone'));
    socket.once('close', () => done('gone'));
  });
}
