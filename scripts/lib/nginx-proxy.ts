/**
 * nginx as the reference reverse proxy for bench:router: one worker (node's event loop is one
 * thread), keep-alive to the upstream, plain HTTP and TLS with HTTP/2 on loopback, serving the
 * certificate the router serves. A child of the bench (tracked: killed on exit, error or Ctrl-C).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { freePort } from '../../test/support/free-port.js';
import { track } from '../bench-children.js';

export interface NginxProxy {
  child: ChildProcess;
  port: number;
  httpsPort: number;
  /** The version line nginx prints (`nginx version: nginx/1.22.1`). */
  version: string;
}

/** The nginx binary on this machine, or undefined. */
export function nginxBinary(): string | undefined {
  for (const bin of ['nginx', '/usr/sbin/nginx', '/usr/local/sbin/nginx']) {
    const r = spawnSync(bin, ['-v'], { encoding: 'utf8' });
    if (r.error === undefined && r.status === 0) return bin;
  }
  return undefined;
}

/** The lines of the configuration that decide its pace, for the bench's header. */
export const NGINX_SUMMARY =
  'worker_processes 1; upstream { keepalive 32; } proxy_http_version 1.1; listen ssl http2 (TLSv1.2-1.3); access_log off; keepalive_requests 1000000';

function config(dir: string, upstream: { host: string; port: number }, port: number, httpsPort: number, cert: string, key: string): string {
  // No cap on requests per client connection (the router has none; h2load does not reconnect
  // after a GOAWAY), and the same forwarded headers the router sets.
  return `worker_processes 1;
daemon off;
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'error.log')} warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${join(dir, 'body')};
  proxy_temp_path ${join(dir, 'proxy')};
  fastcgi_temp_path ${join(dir, 'fastcgi')};
  uwsgi_temp_path ${join(dir, 'uwsgi')};
  scgi_temp_path ${join(dir, 'scgi')};
  keepalive_timeout 120s;
  keepalive_requests 1000000;
  upstream app {
    server ${upstream.host}:${upstream.port};
    keepalive 32;
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:${port};
    listen 127.0.0.1:${httpsPort} ssl http2;
    ssl_certificate ${cert};
    ssl_certificate_key ${key};
    ssl_protocols TLSv1.2 TLSv1.3;
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-Host $host;
    }
  }
}
`;
}

/** One GET on a fresh connection: the status, or 0 when nothing answered. */
function probe(port: number, host: string): Promise<number> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/', headers: { host }, agent: false }, (res) => {
      res.resume();
      res.on('error', () => resolve(0));
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', () => resolve(0));
    req.end();
  });
}

/** Starts nginx in `dir` in front of `upstream`; resolves once it answers 200 for `host`. */
export async function startNginx(bin: string, dir: string, upstream: { host: string; port: number }, tls: { cert: string; key: string }, host: string): Promise<NginxProxy> {
  const port = await freePort();
  const httpsPort = await freePort();
  const conf = join(dir, 'nginx.conf');
  await writeFile(conf, config(dir, upstream, port, httpsPort, tls.cert, tls.key));
  const version = (spawnSync(bin, ['-v'], { encoding: 'utf8' }).stderr ?? '').trim();
  const errorLog = join(dir, 'error.log');
  const child = track(spawn(bin, ['-p', dir, '-e', errorLog, '-c', conf], { stdio: ['ignore', 'ignore', 'pipe'], detached: true }), 'nginx');
  let err = '';
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`nginx exited with ${child.exitCode}:\n${err}${await readFile(errorLog, 'utf8').catch(() => '')}`);
    if ((await probe(port, host)) === 200) return { child, port, httpsPort, version };
    if (Date.now() > deadline) throw new Error(`nginx did not answer 200 on ${port}:\n${err}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
