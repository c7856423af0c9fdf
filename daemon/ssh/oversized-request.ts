import type { Socket } from 'node:net';
import type { Connection } from 'ssh2';

/**
 * The longest command line `ssh rack ...` takes. ssh2 reads packets of at most 35,000 bytes (the
 * RFC 4253 minimum; OpenSSH reads 256 KiB) and an exec request carries the whole command line in
 * one packet, so a longer line never arrives: 32 KiB leaves room for the request's own fields and
 * the cipher's padding.
 */
export const MAX_COMMAND_BYTES = 32 * 1024;

const TOO_LONG = ` !     command line too long (max ${MAX_COMMAND_BYTES} bytes)\r\n`;
const EXTENDED_DATA_STDERR = 1;
/** How long the client gets to read the answer and hang up itself before the socket is closed. */
const HANG_UP_MS = 5000;

/** The parts of ssh2 1.x's connection this needs; none of them is public API, hence every check. */
interface SessionInternals {
  type?: unknown;
  _channel?: unknown;
  _chanInfo?: { outgoing?: { id?: unknown } };
}
interface ConnectionInternals {
  _sock?: Socket;
  _chanMgr?: { _channels?: Record<string, unknown> };
  _protocol?: {
    channelExtData?: (chan: number, data: string, type: number) => void;
    exitStatus?: (chan: number, status: number) => void;
    channelEOF?: (chan: number) => void;
    channelClose?: (chan: number) => void;
  };
}

/** ssh2's error for a packet over its limit; the connection is closed right after it. */
export function isOversizedPacket(err: Error): boolean {
  return err.message.startsWith('Bad packet length');
}

/**
 * ssh2 cannot read a packet over its limit and drops the connection, which left the user with
 * nothing but "connection closed". The request is lost, but rack can still write: every session
 * still waiting for its request is told why, on stderr, and exits 1. It must run inside ssh2's
 * 'error' event, before ssh2 ends the socket. Should ssh2's internals change, it does nothing.
 */
export function tellOversized(client: Connection): void {
  const internals = client as unknown as ConnectionInternals;
  const proto = internals._protocol;
  const channels = internals._chanMgr?._channels;
  if (!proto || !channels || !proto.channelExtData || !proto.exitStatus || !proto.channelEOF || !proto.channelClose) return;
  let told = false;
  for (const entry of Object.values(channels)) {
    const session = entry as SessionInternals | null;
    // A session that has a channel already got its request: that one is not what failed.
    if (!session || typeof session !== 'object' || session.type !== 'session' || session._channel !== undefined) continue;
    const id = session._chanInfo?.outgoing?.id;
    if (typeof id !== 'number') continue;
    try {
      proto.channelExtData.call(proto, id, TOO_LONG, EXTENDED_DATA_STDERR);
      proto.exitStatus.call(proto, id, 1);
      proto.channelEOF.call(proto, id);
      proto.channelClose.call(proto, id);
      told = true;
    } catch {
      return; // the socket is gone already: nobody is left to tell
    }
  }
  const socket = internals._sock;
  if (!told || !socket) return;
  // ssh2 ends the socket next; closed under the client, ssh would add "Connection closed by remote
  // host" to the answer. The client hangs up once it has read the channel's close, or it is cut.
  socket.end = function deferredEnd(this: Socket) {
    setTimeout(() => socket.destroy(), HANG_UP_MS).unref();
    return this;
  } as Socket['end'];
}
