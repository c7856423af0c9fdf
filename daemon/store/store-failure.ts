import { getSystemErrorMap } from 'node:util';
import { RackError } from '../rack-error.js';

/** The errno name of each system error message ("no space left on device" → ENOSPC), as libuv words them. */
let errnoNames: Map<string, string> | undefined;

/**
 * What a LevelDB error says went wrong, for one line: LevelDB hands only strerror's text
 * ("IO error: /home/db/000003.log: No space left on device"), so its last part is looked up to
 * name the errno too. Follows `cause` (open failures wrap the IO error).
 */
export function storeErrorReason(err: unknown): { errno: string | undefined; text: string } {
  let inner = err;
  while (inner instanceof Error && inner.cause instanceof Error) inner = inner.cause;
  const message = inner instanceof Error ? inner.message : String(inner);
  if ((inner as { code?: unknown }).code === 'LEVEL_LOCKED') return { errno: undefined, text: 'another process has it open' };
  const last = message.slice(message.lastIndexOf(': ') + 2).trim();
  errnoNames ??= new Map([
    ...[...getSystemErrorMap().values()].map(([name, text]): [string, string] => [text.toLowerCase(), name]),
    // glibc's words where libuv has other ones or none.
    ['input/output error', 'EIO'],
    ['disk quota exceeded', 'EDQUOT'],
  ]);
  const errno = errnoNames.get(last.toLowerCase());
  return errno === undefined ? { errno: undefined, text: message } : { errno, text: last.toLowerCase() };
}

/** Refusal of every change once a write failed; the user is told the cause and the way out. */
export function storeWriteFailed(err: unknown): RackError {
  const { errno, text } = storeErrorReason(err);
  const cause = errno === undefined ? text : `${errno}: ${text}`;
  const fix = errno === 'ENOSPC' || errno === 'EDQUOT' ? 'free space and restart rackd' : 'restart rackd once that is fixed';
  return new RackError('store_failed', `rack cannot save changes: its store failed to write (${cause}); ${fix}`, { cause: err });
}

export function storeOpenFailed(path: string, err: unknown): RackError {
  return new RackError('store_failed', `cannot open the store at ${path}: ${storeErrorReason(err).text}`, { cause: err });
}

/**
 * Whether a failed write may have reached LevelDB's log. abstract-level refuses some writes before
 * LevelDB sees them (a closed database, a bad key or value); every other failure leaves the log in
 * a state nobody knows.
 */
export function writeReachedLog(err: unknown): boolean {
  const code = (err as { code?: unknown } | undefined)?.code;
  if (typeof code !== 'string' || !code.startsWith('LEVEL_')) return true;
  return code === 'LEVEL_IO_ERROR' || code === 'LEVEL_CORRUPTION';
}
