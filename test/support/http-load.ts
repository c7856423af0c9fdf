import http from 'node:http';

/** One GET through a router with that Host. */
export function get(port: number, host: string, agent: http.Agent | false): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', headers: { host }, agent }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('error', reject);
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
  });
}

export interface HttpLoad {
  /** Answers so far with a 200. */
  ok(): number;
  stop(): Promise<{ ok: number; failed: string[] }>;
}

/**
 * Closed-loop clients against a router: some on keep-alive connections, some opening a connection
 * per request. Anything but a 200 (an error, a 502, a 503) is a failed request.
 */
export function httpLoad(port: number, host: string, keepAlive: number, fresh: number): HttpLoad {
  let running = true;
  let ok = 0;
  const failed: string[] = [];
  const loop = async (agent: http.Agent | false): Promise<void> => {
    while (running) {
      try {
        const r = await get(port, host, agent);
        if (r.status === 200) ok++;
        else failed.push(`status ${r.status}: ${r.body.slice(0, 200)}`);
      } catch (err) {
        failed.push(String(err));
      }
    }
  };
  const agents = Array.from({ length: keepAlive }, () => new http.Agent({ keepAlive: true, maxSockets: 1 }));
  const loops = [...agents.map((a) => loop(a)), ...Array.from({ length: fresh }, () => loop(false))];
  return {
    ok: () => ok,
    stop: async () => {
      running = false;
      await Promise.all(loops);
      for (const a of agents) a.destroy();
      return { ok, failed };
    },
  };
}
