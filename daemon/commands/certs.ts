import { authorize, keyHasApp } from '../access/access-policy.js';
import { renewalTime } from '../certs/auto-certificates.js';
import { checkBundle, MAX_BUNDLE_BYTES } from '../certs/certificate-check.js';
import { parseHostName } from '../host-name.js';
import { RackError } from '../rack-error.js';
import { CONTROL_PLANE_APP } from '../router/upstream.js';
import type { AppHttps, CertRecord } from '../store/records.js';
import { table, timestamp, type Command, type CommandContext } from './command.js';

/** How long certs:auto on waits for its orders before it leaves them to the background. */
const AUTO_WAIT_MS = 90_000;

function onOff(word: string | undefined, usage: string): boolean {
  if (word === 'on' || word === 'off') return word === 'on';
  throw new RackError('bad_argument', `expected on or off (usage: ${usage})`);
}

/** A host named on the command line, and the app it is attached to; the caller must be allowed that app. */
async function attachedHost(ctx: CommandContext, raw: string, action: string): Promise<{ host: string; app: string }> {
  const host = parseHostName(raw);
  const app = await ctx.services.certs.requireOwner(host);
  // rack's own host is the operator's: only an admin may give it a certificate.
  authorize(ctx.principal, app === CONTROL_PLANE_APP ? 'admin' : 'member', action, app);
  // Checked after the rights, so the answer names the owner only to those who may act on it.
  if (ctx.app !== '' && ctx.app !== app) throw new RackError('bad_argument', `${host} is not a host of ${ctx.app}: it is ${app === CONTROL_PLANE_APP ? "rack's own" : `served by ${app}`}`);
  return { host, app };
}

function status(record: CertRecord | undefined, auto: boolean, now: Date): string {
  const failing = record?.acme?.lastError !== undefined && (record.acme.failures ?? 0) > 0;
  const retry = record?.acme?.nextAttemptAt === undefined ? '' : ` (next try ${timestamp(record.acme.nextAttemptAt)})`;
  if (record?.certificate === undefined) {
    if (failing) return `failed: ${record!.acme!.lastError}${retry}`;
    return auto ? 'ordering' : 'none: plain HTTP only';
  }
  const notAfter = new Date(record.certificate.notAfter);
  if (notAfter <= now) return failing ? `EXPIRED; renewal failing: ${record.acme!.lastError}${retry}` : 'EXPIRED';
  if (failing) return `renewal failing: ${record.acme!.lastError}${retry}`;
  if (record.source === 'acme' && auto) return `ok, renews ${timestamp(renewalTime(record.certificate).toISOString())}`;
  return `ok, ${Math.floor((notAfter.getTime() - now.getTime()) / 86_400_000)} days left`;
}

interface HostRow {
  host: string;
  app: string;
  source: CertRecord['source'] | 'none';
  auto: boolean;
  certificate: CertRecord['certificate'] | null;
  status: string;
  acme: CertRecord['acme'] | null;
}

export const certsCommands: Command[] = [
  {
    name: 'certs',
    access: 'checked-by-command',
    usage: 'certs [-a APP] [--json]',
    example: 'certs -a myapp',
    summary: "list the certificates of your apps' hosts: source, expiry, renewal, errors",
    app: 'optional',
    json: true,
    args: { min: 0, max: 0 },
    async run(ctx) {
      const { store, certs, config } = ctx.services;
      const only = ctx.app === '' ? undefined : ctx.app;
      const apps = (await store.listApps()).filter((a) => keyHasApp(ctx.principal, a.name) && (only === undefined || a.name === only));
      const now = new Date();
      const rows: HostRow[] = [];
      const add = async (app: string, auto: boolean): Promise<void> => {
        for (const host of await certs.hostsOf(app)) {
          const record = await store.certs.get(host);
          rows.push({
            host,
            app,
            source: record?.source ?? 'none',
            auto,
            certificate: record?.certificate ?? null,
            status: status(record, auto, now),
            acme: record?.acme ?? null,
          });
        }
      };
      for (const app of apps) await add(app.name, app.https?.auto === true);
      if (ctx.principal.role === 'admin' && only === undefined) await add(CONTROL_PLANE_APP, config.consoleAcme);
      if (ctx.flags['json']) return ctx.printJson(rows);
      if (rows.length === 0) return ctx.print('no apps yet');
      const lines = rows.map((r) => [r.host, r.app, r.source === 'none' ? '-' : r.source, r.certificate ? timestamp(r.certificate.notAfter) : '-', r.status]);
      for (const line of table([['HOST', 'APP', 'SOURCE', 'EXPIRES', 'STATUS'], ...lines])) ctx.print(line);
    },
  },
  {
    name: 'certs:add',
    access: 'checked-by-command',
    usage: 'certs:add HOST [-a APP] < chain-and-key.pem',
    example: 'certs:add www.example.com -a myapp < bundle.pem',
    summary: 'serve HOST over HTTPS with your certificate (the chain, leaf first, then its key, on stdin)',
    app: 'optional',
    args: { min: 1, max: 1 },
    audit: (ctx) => ({ detail: ctx.args[0] ?? '' }),
    async run(ctx) {
      const { host, app } = await attachedHost(ctx, ctx.args[0]!, 'certs:add');
      const text = await ctx.readInput(MAX_BUNDLE_BYTES + 1);
      if (text.trim() === '') throw new RackError('bad_argument', `give the certificate chain and its key on stdin: ssh rack certs:add ${host} < bundle.pem`);
      const bundle = checkBundle(text, host);
      await ctx.services.certs.install(host, app, bundle, 'manual');
      ctx.result({ host, app, certificate: bundle.info });
      ctx.print(`-----> Certificate for ${host} installed (${app})`);
      ctx.print(`       issuer ${bundle.info.issuer}, expires ${timestamp(bundle.info.notAfter)}`);
      ctx.print(`       https://${host}${httpsPortSuffix(ctx)}/ serves it from the next connection`);
    },
  },
  {
    name: 'certs:remove',
    access: 'checked-by-command',
    usage: 'certs:remove HOST [-a APP]',
    example: 'certs:remove www.example.com -a myapp',
    summary: "stop serving HOST's certificate (with certs:auto on, a new one is ordered)",
    app: 'optional',
    args: { min: 1, max: 1 },
    audit: (ctx) => ({ detail: ctx.args[0] ?? '' }),
    async run(ctx) {
      const { host, app } = await attachedHost(ctx, ctx.args[0]!, 'certs:remove');
      const removed = await ctx.services.certs.remove(host, 'certs:remove');
      if (removed?.certificate === undefined) throw new RackError('bad_argument', `${host} has no certificate`);
      ctx.result({ host, app });
      ctx.print(`-----> Certificate for ${host} removed`);
      if (app !== CONTROL_PLANE_APP && (await ctx.services.store.requireApp(app)).https?.auto === true) {
        await ctx.services.autoCerts.check(app);
        ctx.print('       certs:auto is on: a new certificate is being ordered (see: certs)');
      }
    },
  },
  {
    name: 'certs:auto',
    access: 'member',
    usage: 'certs:auto on|off [-a APP] [--no-wait]',
    example: 'certs:auto on -a myapp',
    summary: "keep ACME certificates (Let's Encrypt by default) on every host of the app, renewed automatically",
    app: true,
    options: { 'no-wait': { type: 'boolean' } },
    args: { min: 1, max: 1 },
    audit: (ctx) => ({ detail: ctx.args[0] ?? '' }),
    async run(ctx) {
      const on = onOff(ctx.args[0], 'certs:auto on|off [-a APP] [--no-wait]');
      const { store, autoCerts, config } = ctx.services;
      await store.setAppHttps(ctx.app, { auto: on });
      ctx.result({ app: ctx.app, auto: on });
      if (!on) {
        ctx.print(`-----> Automatic certificates off for ${ctx.app}: certificates it has are kept until removed, and no longer renewed`);
        return;
      }
      ctx.print(`-----> Automatic certificates on for ${ctx.app} (${config.acmeDirectory})`);
      const due = await autoCerts.check(ctx.app, false);
      if (due.length === 0) return ctx.print('       every host already has a certificate');
      ctx.print(`       ordering ${due.join(', ')}; the CA fetches http://HOST/.well-known/acme-challenge/… through rack's router`);
      if (ctx.flags['no-wait'] === true) return;
      await Promise.race([autoCerts.idle(), new Promise((r) => setTimeout(r, AUTO_WAIT_MS).unref()), ctx.closed]);
      for (const host of due) {
        const record = await store.certs.get(host);
        if (record?.certificate !== undefined && record.acme?.failures === 0) ctx.print(`       ${host}: issued, expires ${timestamp(record.certificate.notAfter)}`);
        else if (record?.acme?.lastError !== undefined) ctx.print(`       ${host}: failed: ${record.acme.lastError}`);
        else ctx.print(`       ${host}: still ordering (see: certs -a ${ctx.app})`);
      }
    },
  },
  httpsSwitch('redirect', 'certs:redirect on|off [-a APP]', 'answer plain HTTP with a 308 redirect to HTTPS on hosts that have a certificate'),
  httpsSwitch('hsts', 'certs:hsts on|off [-a APP]', 'send Strict-Transport-Security (one year) on HTTPS answers'),
];

function httpsPortSuffix(ctx: CommandContext): string {
  const port = ctx.services.config.httpsPort;
  return port === undefined || port === 443 ? '' : `:${port}`;
}

function httpsSwitch(name: 'redirect' | 'hsts', usage: string, summary: string): Command {
  return {
    name: `certs:${name}`,
    access: 'member',
    usage,
    example: `certs:${name} on -a myapp`,
    summary,
    app: true,
    args: { min: 1, max: 1 },
    audit: (ctx) => ({ detail: ctx.args[0] ?? '' }),
    async run(ctx) {
      const on = onOff(ctx.args[0], usage);
      const change: AppHttps = name === 'redirect' ? { redirect: on } : { hsts: on };
      await ctx.services.store.setAppHttps(ctx.app, change);
      await ctx.services.supervisor.publish(ctx.app);
      ctx.result({ app: ctx.app, [name]: on });
      ctx.print(`-----> ${name === 'redirect' ? 'HTTP → HTTPS redirect' : 'HSTS'} ${on ? 'on' : 'off'} for ${ctx.app}`);
    },
  };
}
