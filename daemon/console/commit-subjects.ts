import { execFile } from 'node:child_process';

const SHA = /^[0-9a-f]{40}$/;
const MAX_CACHED = 5000;

/**
 * The subject line of pushed commits, read from the app's bare repo (builds record the SHA only).
 * Commits never change, so answers are cached. git runs with an argument array, SHAs only.
 */
export class CommitSubjects {
  private readonly cache = new Map<string, string>();

  async of(repo: string, shas: Iterable<string>): Promise<Map<string, string>> {
    const wanted = [...new Set(shas)].filter((s) => SHA.test(s));
    const missing = wanted.filter((s) => !this.cache.has(`${repo}\0${s}`));
    if (missing.length > 0) {
      const out = await new Promise<string>((resolve) => {
        execFile('git', ['--git-dir', repo, 'show', '-s', '--format=%H%x09%s', ...missing.slice(0, 500)], { maxBuffer: 4 << 20 }, (err, stdout) =>
          // A commit gone from the repo (app destroyed and made again) leaves its subject unknown.
          resolve(err ? '' : stdout),
        );
      });
      if (this.cache.size > MAX_CACHED) this.cache.clear();
      for (const line of out.split('\n')) {
        const tab = line.indexOf('\t');
        if (tab === 40) this.cache.set(`${repo}\0${line.slice(0, 40)}`, line.slice(41));
      }
    }
    const found = new Map<string, string>();
    for (const s of wanted) {
      const subject = this.cache.get(`${repo}\0${s}`);
      if (subject !== undefined) found.set(s, subject);
    }
    return found;
  }
}
