import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { freePort } from './free-port.js';
import { TestCa } from './test-certs.js';

/**
 * Let's Encrypt's Pebble (Debian's `pebble` package) as a real ACME server for the tests, with
 * `pebble-challtestsrv` as its DNS, answering 127.0.0.1 for every name. Pebble's validation
 * authority really fetches http-01 answers from `httpPort` (rack's router). Its own HTTPS listener
 * has a certificate from a test CA: `tlsCaFile` is what a client (rackd, via NODE_EXTRA_CA_CERTS)
 * must trust to talk to it.
 */
export interface Pebble {
  directoryUrl: string;
  tlsCaFile: string;
  /** The root that signs what Pebble issues (fresh each start). */
  rootPem(): Promise<string>;
  stop(): Promise<void>;
}

export interface PebbleOptions {
  /** Where the CA connects to validate http-01: the router's plain port. */
  httpPort: number;
  /** Lifetime of issued certificates in seconds (Pebble's default is five years). */
  validitySeconds?: number;
  /** Names Pebble refuses to issue for, as a CA's policy would. */
  blocklist?: string[];
}


export async function startPebble(opts: PebbleOptions): Promise<Pebble> {
  const dir = await mkdtemp(join(tmpdir(), 'rack-pebble-'));
  const children: ChildProcess[] = [];
  let output = '';
  const track = (child: ChildProcess): ChildProcess => {
    children.push(child);
    child.stdout?.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr?.on('data', (c: Buffer) => (output += c.toString()));
    return child;
  };
  const stop = async (): Promise<void> => {
    for (const child of children) {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGKILL');
        await exited;
      }
    }
    await rm(dir, { recursive: true, force: true });
  };
  process.once('exit', () => children.forEach((c) => c.kill('SIGKILL')));
  try {
    const ca = await TestCa.create('pebble listener CA');
    const listener = await ca.leaf({ names: ['localhost'] });
    const tlsCaFile = join(dir, 'listener-ca.pem');
    await writeFile(tlsCaFile, ca.ca.cert);
    await writeFile(join(dir, 'cert.pem'), listener.cert);
    await writeFile(join(dir, 'key.pem'), listener.key, { mode: 0o600 });

    const [acmePort, managementPort, dnsPort, challtestManagement] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
    const config = {
      pebble: {
        listenAddress: `127.0.0.1:${acmePort}`,
        managementListenAddress: `127.0.0.1:${managementPort}`,
        certificate: join(dir, 'cert.pem'),
        privateKey: join(dir, 'key.pem'),
        httpPort: opts.httpPort,
        tlsPort: await freePort(),
        ocspResponderURL: '',
        externalAccountBindingRequired: false,
        domainBlocklist: opts.blocklist ?? [],
        ...(opts.validitySeconds === undefined ? {} : { certificateValidityPeriod: opts.validitySeconds }),
      },
    };
    await writeFile(join(dir, 'pebble.json'), JSON.stringify(config));
    track(
      spawn(
        'pebble-challtestsrv',
        ['-defaultIPv4', '127.0.0.1', '-defaultIPv6', '', '-dns01', `127.0.0.1:${dnsPort}`, '-http01', '', '-https01', '', '-tlsalpn01', '', '-management', `127.0.0.1:${challtestManagement}`],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      ),
    );
    // No random sleep before validating (up to 15 s otherwise). Nonce rejection stays at its
    // default: rack's ACME client must cope with badNonce as it would with Let's Encrypt.
    track(spawn('pebble', ['-config', join(dir, 'pebble.json'), '-dnsserver', `127.0.0.1:${dnsPort}`], { env: { ...process.env, PEBBLE_VA_NOSLEEP: '1' }, stdio: ['ignore', 'pipe', 'pipe'] }));

    const agent = new Agent({ connect: { ca: ca.ca.cert } });
    const directoryUrl = `https://localhost:${acmePort}/dir`;
    const deadline = Date.now() + 20_000;
    for (;;) {
      const ok = await request(directoryUrl, { dispatcher: agent }).then(
        async (r) => (await r.body.text(), r.statusCode === 200),
        () => false,
      );
      if (ok) break;
      if (children.some((c) => c.exitCode !== null) || Date.now() > deadline) throw new Error(`pebble did not start:\n${output}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    return {
      directoryUrl,
      tlsCaFile,
      async rootPem() {
        const r = await request(`https://localhost:${managementPort}/roots/0`, { dispatcher: agent });
        return r.body.text();
      },
      async stop() {
        await agent.close();
        await stop();
      },
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
