import { open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';

/** Writes `data` to `path` so readers see either the old or the new content, and it survives a crash. */
export async function writeFileAtomic(path: string, data: string, mode = 0o600): Promise<void> {
  const temp = `${path}.tmp-${process.pid}`;
  try {
    const fh = await open(temp, 'w', mode);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(temp, path);
  } catch (err) {
    // On a full disk a half-written temp file would only take more of the little space left.
    await rm(temp, { force: true });
    throw err;
  }
  // The rename itself is only durable once the directory is synced.
  const dir = await open(dirname(path), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}
