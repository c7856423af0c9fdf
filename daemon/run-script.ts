import { spawn } from 'node:child_process';
import { lineSplitter } from './line-splitter.js';

export interface ProgramOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
}

/**
 * Runs a program with an argument array (never a shell line), every line of its stdout and stderr
 * to `onLine`. Resolves with its exit status.
 */
export function runProgram(cmd: string, args: string[], opts: ProgramOptions, onLine: (line: string) => void): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    const lines = lineSplitter(onLine);
    child.stdout.on('data', (c: Buffer) => lines.push(c));
    child.stderr.on('data', (c: Buffer) => lines.push(c));
    child.on('error', reject);
    child.on('close', (code) => {
      lines.end();
      resolve(code ?? 1);
    });
  });
}

/** Runs one of rack's own scripts: `bash SCRIPT ARGS...`. */
export function runScript(script: string, args: string[], onLine: (line: string) => void): Promise<number> {
  return runProgram('bash', [script, ...args], {}, onLine);
}
