import type { ExecutionContext } from 'ava';
import { execFile } from 'node:child_process';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * A fresh tmpfs of `size` (mount's words: `8m`) that really fills up, unmounted when the test ends.
 * Mounting needs root, as CI has: a test using it fails, not skips, without.
 */
export async function smallDisk(t: ExecutionContext, size: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'rack-disk-'));
  await run('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'tmpfs', dir]);
  t.teardown(async () => {
    await run('umount', ['-l', dir]);
    await rm(dir, { recursive: true, force: true });
  });
  return dir;
}

/** Writes a file until the disk is full to the last byte; returns its path (remove it to free the space). */
export async function fillDisk(dir: string): Promise<string> {
  const path = join(dir, 'filler');
  const fh = await open(path, 'w');
  const chunk = Buffer.alloc(256 * 1024, 0x61);
  try {
    for (;;) await fh.write(chunk);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    await fh.close();
  }
  return path;
}
