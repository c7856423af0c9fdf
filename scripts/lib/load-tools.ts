/**
 * The load generators of bench:router, native programs from Debian's packages that outpace either
 * proxy on this machine: `wrk` for HTTP/1.1 (plain and TLS) and `h2load` (nghttp2-client) for HTTP/2.
 * Each runs as a tracked child (killed on exit, error or Ctrl-C) against a loopback port, sending
 * the app's host name both as Host and as SNI.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { track } from '../bench-children.js';
import { logPercentiles, parseH2load, parseWrk, type LoadFigures } from './load-tool-output.js';

export const WRK_THREADS = 2;
export const H2LOAD_THREADS = 2;
export const CONNECTIONS = 16;
export const H2_STREAMS = 10;

/**
 * wrk takes SNI from the URL's host and resolves it before any script runs; a script may replace
 * that resolution, so the certificate's name goes out as SNI while the connection goes to loopback
 * (`*.test` names resolve nowhere, and /etc/hosts is the machine's, not the bench's).
 */
const LOOPBACK_LUA = `wrk.resolve = function(host, service)
  wrk.addrs = wrk.lookup("127.0.0.1", service)
end
`;

/** The programs missing on this machine, by Debian package. */
export function missingTools(): string[] {
  const missing: string[] = [];
  if (spawnSync('wrk', ['-v'], { stdio: 'ignore' }).error !== undefined) missing.push('wrk');
  if (spawnSync('h2load', ['--version'], { stdio: 'ignore' }).error !== undefined) missing.push('nghttp2-client');
  return missing;
}

export function versions(): { wrk: string; h2load: string } {
  const wrk = spawnSync('wrk', ['-v'], { encoding: 'utf8' });
  const h2 = spawnSync('h2load', ['--version'], { encoding: 'utf8' });
  return {
    wrk: /wrk \S+/.exec(`${wrk.stdout}${wrk.stderr}`)?.[0] ?? 'wrk',
    h2load: /h2load \S+/.exec(`${h2.stdout}${h2.stderr}`)?.[0]?.replace(/^h2load nghttp2\//, 'h2load ') ?? 'h2load',
  };
}

/** Runs a load generator to its end; its output, or an error carrying what it said. */
function runTool(cmd: string, args: string[]): Promise<string> {
  const child = track(spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true }), cmd);
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      if (code === 0) resolve(out);
      else reject(new Error(`${cmd} ${args.join(' ')} ended with ${signal ?? code}:\n${out.slice(0, 2000)}`));
    });
  });
}

export class LoadTools {
  readonly #dir: string;
  readonly #host: string;

  private constructor(dir: string, host: string) {
    this.#dir = dir;
    this.#host = host;
  }

  /** Tools that send `host` (Host and SNI); `dir` holds wrk's script and h2load's request logs. */
  static async create(dir: string, host: string): Promise<LoadTools> {
    await writeFile(join(dir, 'loopback.lua'), LOOPBACK_LUA);
    return new LoadTools(dir, host);
  }

  /** The command lines, for the bench's header. */
  describe(seconds: number): { wrk: string; h2load: string } {
    return {
      wrk: `wrk -t${WRK_THREADS} -c${CONNECTIONS} -d${seconds}s --latency -H 'Host: ${this.#host}' (https: SNI ${this.#host}, connecting to 127.0.0.1)`,
      h2load: `h2load -t${H2LOAD_THREADS} -c${CONNECTIONS} -m${H2_STREAMS} -D ${seconds} --npn-list=h2 --connect-to=127.0.0.1:PORT https://${this.#host}:PORT/ (p50/p99 from --log-file)`,
    };
  }

  /** HTTP/1.1 with keep-alive, plain or over TLS. */
  async wrk(port: number, tls: boolean, seconds: number): Promise<LoadFigures> {
    const args = [`-t${WRK_THREADS}`, `-c${CONNECTIONS}`, `-d${seconds}s`, '--latency', '-H', `Host: ${this.#host}`];
    const url = tls ? `https://${this.#host}:${port}/` : `http://127.0.0.1:${port}/`;
    if (tls) args.push('-s', join(this.#dir, 'loopback.lua'));
    return parseWrk(await runTool('wrk', [...args, url]));
  }

  /**
   * HTTP/2 over TLS, h2 only: a listener that does not offer it fails every stream (no fallback to
   * HTTP/1.1, which would measure something else), and `protocol` says what was negotiated.
   */
  async h2load(port: number, seconds: number, opts: { requests?: number } = {}): Promise<LoadFigures> {
    const log = join(this.#dir, `h2load-${port}.log`);
    const amount = opts.requests === undefined ? ['-D', String(seconds)] : ['-n', String(opts.requests)];
    const clients = opts.requests === undefined ? CONNECTIONS : 1;
    const args = [`-t${Math.min(H2LOAD_THREADS, clients)}`, `-c${clients}`, `-m${H2_STREAMS}`, ...amount, '--npn-list=h2', `--connect-to=127.0.0.1:${port}`, `--log-file=${log}`, `https://${this.#host}:${port}/`];
    try {
      const output = await runTool('h2load', args);
      const figures = parseH2load(output);
      const { p50Ms, p99Ms } = logPercentiles(await readFile(log, 'utf8').catch(() => ''));
      return { ...figures, p50Ms, p99Ms };
    } finally {
      await rm(log, { force: true });
    }
  }
}
