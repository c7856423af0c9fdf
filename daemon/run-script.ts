import { spawn } from 'node:child_process';
import { lineSplitter } from './line-splitter.js';

/**
 * Runs one of rack's own scripts (`bash SCRIPT ARGS...`, an argument array, never a shell line),
 * every line of its stdout and stderr to `onLine`. Resolves with its exit status.
 */
export function runScript(script: string, args: string[], onLine: (line: string) => void): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
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
