import { formatBytes } from '../addons/addon-backups.js';
import { KINDS, parseAlias, parseKind } from '../addons/addon-kinds.js';
import { createdBy } from '../access/principal.js';
import { assertAppName } from '../app-name.js';
import { RackError } from '../rack-error.js';
import { execOutput } from '../runtime/docker-services.js';
import type { AddonRecord, BackupRecord } from '../store/records.js';
import { textOutput } from '../user-output.js';
import { table, timestamp, type Command, type CommandContext, type CommandSession } from './command.js';

/**
 * Who may act on an add-on: an admin, or a full (not deploy-only) key of an app it is attached to;
 * one attached to nothing belongs to the app it was created for. Its password is in those apps'
 * config already, so nothing here shows more than they can read.
 */
async function authorizeAddon(ctx: CommandContext, name: string, action: string, ofSelectedApp = true): Promise<AddonRecord> {
  assertNotDeployOnly(ctx, action);
  const addon = await ctx.services.addons.require(name);
  const attached = (await ctx.services.addons.attachedApps(addon.name)).map((a) => a.app);
  // Attached to nothing: its app's members, while that app exists (a later app of the name is not it).
  const owners = attached.length > 0 ? attached : addon.createdFor ? [addon.createdFor] : [];
  if (ctx.principal.role !== 'admin' && !owners.some((app) => ctx.principal.apps.includes(app))) {
    throw new RackError('forbidden', `${ctx.principal.kind} "${ctx.principal.name}" may not run ${action} on add-on ${addon.name}: it is attached to none of its apps`);
  }
  // `-a APP` said which app the user means: acting on another app's add-on would be a surprise.
  if (ofSelectedApp && ctx.app !== '' && !owners.includes(ctx.app)) {
    throw new RackError('bad_argument', `add-on ${addon.name} is not attached to ${ctx.app}${owners.length > 0 ? ` (it is ${attached.length > 0 ? 'attached to' : 'kept for'} ${owners.join(', ')})` : ''}`);
  }
  return addon;
}

function assertNotDeployOnly(ctx: CommandContext, action: string): void {
  if (ctx.principal.role === 'deploy') {
    throw new RackError('forbidden', `${ctx.principal.kind} "${ctx.principal.name}" may not run ${action}: it is a deploy-only ${ctx.principal.kind}, and add-ons hold data`);
  }
}

function requireSession(ctx: CommandContext, action: string): CommandSession {
  if (!ctx.session) throw new RackError('bad_command', `${action} streams over ssh only: ssh rack ${action} ...`);
  return ctx.session;
}

/** `b3` (one of NAME's backups) or `OTHER:b3` (another add-on's, which the caller must also be allowed). */
async function findBackup(ctx: CommandContext, name: string, word: string): Promise<BackupRecord> {
  const m = /^(?:([a-z][a-z0-9-]{0,40}):)?(b[0-9]{1,9})$/.exec(word);
  if (!m) throw new RackError('bad_argument', `expected a backup like b3 or OTHER-ADDON:b3, got ${JSON.stringify(word.slice(0, 40))}`);
  const from = m[1] ?? name;
  if (from !== name) await authorizeAddon(ctx, from, 'addons:restore', false);
  const backup = await ctx.services.store.addons.getBackup(from, m[2]!);
  if (!backup) throw new RackError('bad_argument', `${from} has no backup ${m[2]} (addons:backups ${from} lists them)`);
  return backup;
}

async function status(ctx: CommandContext, name: string): Promise<string> {
  const state = await ctx.services.runtime.services.state(name);
  if (!state) return 'missing';
  if (!state.running) return state.restartCount > 0 ? 'restarting' : 'stopped';
  return state.health === 'starting' || state.health === 'none' ? 'running' : state.health;
}

async function size(ctx: CommandContext, name: string): Promise<number | null> {
  const n = Number(await execOutput(ctx.services.runtime.services, name, ['rack-addon-size']));
  return Number.isFinite(n) && n > 0 ? n : null;
}

const addonName = (word: string) => {
  try {
    return assertAppName(word);
  } catch {
    throw new RackError('bad_argument', `invalid add-on name ${JSON.stringify(word.slice(0, 40))}: use lower-case letters, digits and single dashes, starting with a letter`);
  }
};

export const addonsCommands: Command[] = [
  {
    name: 'addons',
    access: 'checked-by-command',
    usage: 'addons [-a APP] [--json]',
    example: 'addons -a myapp',
    summary: 'list the add-ons of your apps: type, version, attachments',
    app: 'optional',
    json: true,
    args: { min: 0, max: 0 },
    async run(ctx) {
      assertNotDeployOnly(ctx, 'addons');
      const { addons } = ctx.services;
      const rows: { name: string; type: string; version: string; attached: { app: string; alias: string }[] }[] = [];
      for (const addon of await addons.list()) {
        const attached = (await addons.attachedApps(addon.name)).map(({ app, alias }) => ({ app, alias }));
        const owners = attached.length > 0 ? attached.map((a) => a.app) : addon.createdFor ? [addon.createdFor] : [];
        if (ctx.principal.role !== 'admin' && !owners.some((a) => ctx.principal.apps.includes(a))) continue;
        if (ctx.app !== '' && !owners.includes(ctx.app)) continue;
        rows.push({ name: addon.name, type: addon.kind, version: addon.version, attached });
      }
      if (ctx.flags['json']) return ctx.printJson(rows);
      if (rows.length === 0) return ctx.print('no add-ons yet: addons:create postgres -a APP');
      const words = (r: (typeof rows)[number]) => r.attached.map((a) => `${a.app} as ${a.alias}`).join(', ') || '(detached)';
      for (const line of table([['NAME', 'TYPE', 'VERSION', 'ATTACHED'], ...rows.map((r) => [r.name, r.type, r.version, words(r)])])) ctx.print(line);
    },
  },
  {
    name: 'addons:create',
    access: 'member',
    usage: 'addons:create postgres|redis [--as NAME] [--alias ALIAS] [-a APP]',
    example: 'addons:create postgres -a myapp',
    summary: 'make a Postgres or Redis for an app and attach it (DATABASE_URL / REDIS_URL)',
    app: true,
    options: { as: { type: 'string' }, alias: { type: 'string' } },
    args: { min: 1, max: 1 },
    audit: (ctx) => ({ detail: [ctx.args[0], ctx.flags['as']].filter((w) => typeof w === 'string').join(' ') }),
    async run(ctx) {
      assertNotDeployOnly(ctx, 'addons:create');
      const kind = parseKind(ctx.args[0]!);
      const name = typeof ctx.flags['as'] === 'string' ? addonName(ctx.flags['as']) : undefined;
      const alias = typeof ctx.flags['alias'] === 'string' ? parseAlias(ctx.flags['alias']) : undefined;
      const out = textOutput(ctx.print);
      const addon = await ctx.services.addons.create({ kind, name, app: ctx.app, alias, createdBy: createdBy(ctx.principal) }, out);
      ctx.result({ name: addon.name, type: addon.kind, version: addon.version });
      out.header(`${addon.name} is ${addon.kind} ${addon.version}; addons:info ${addon.name} shows it`);
    },
  },
  {
    name: 'addons:info',
    access: 'checked-by-command',
    usage: 'addons:info NAME [-a APP] [--json]',
    example: 'addons:info myapp-db',
    summary: "an add-on's type, version, status, size, attachments and backups",
    app: 'optional',
    json: true,
    args: { min: 1, max: 1 },
    async run(ctx) {
      const addon = await authorizeAddon(ctx, addonName(ctx.args[0]!), 'addons:info');
      const { addons, backups, runtime } = ctx.services;
      const attached = (await addons.attachedApps(addon.name)).map(({ app, alias }) => ({ app, alias }));
      const list = await backups.list(addon.name);
      const info = {
        name: addon.name,
        type: addon.kind,
        version: addon.version,
        plan: addon.published
          ? `one container on the Swarm's manager, ${KINDS[addon.kind].port}/tcp on attached apps' networks there and at ${addon.published.host}:${addon.published.port} for the workers`
          : `local: one container, ${KINDS[addon.kind].port}/tcp on attached apps' networks only`,
        // The machine that holds its volume: the add-on always runs there.
        node: addon.published?.node ?? 'local',
        status: await status(ctx, addon.name),
        size: await size(ctx, addon.name),
        volume: runtime.services.volumeName(addon.name),
        attached,
        createdFor: addon.createdFor,
        createdAt: addon.createdAt,
        backups: list.length,
        lastBackup: list[0] ? { id: list[0].id, at: list[0].createdAt, bytes: list[0].bytes } : null,
        nextScheduledBackup: backups.nextScheduled(addon).toISOString(),
      };
      if (ctx.flags['json']) return ctx.printJson(info);
      const rows: [string, string][] = [
        ['name:', info.name],
        ['type:', `${info.type} ${info.version}`],
        ['plan:', info.plan],
        ['status:', info.status],
        ['size:', info.size === null ? '-' : formatBytes(info.size)],
        ['volume:', info.volume],
        ['node:', info.node],
        ['attached:', attached.map((a) => `${a.app} as ${a.alias}`).join(', ') || '(detached)'],
        ['created:', `${timestamp(info.createdAt)}${info.createdFor ? ` for ${info.createdFor}` : ''}`],
        ['backups:', `${info.backups}${info.lastBackup ? `, last ${info.lastBackup.id} at ${timestamp(info.lastBackup.at)}` : ''}; next scheduled ${timestamp(info.nextScheduledBackup)}`],
      ];
      for (const line of table(rows)) ctx.print(line);
    },
  },
  {
    name: 'addons:attach',
    access: 'member',
    usage: 'addons:attach NAME [--as ALIAS] [-a APP]',
    example: 'addons:attach myapp-db -a otherapp',
    summary: "attach an add-on to another app: ALIAS_URL (default DATABASE_URL / REDIS_URL) in a release",
    app: true,
    options: { as: { type: 'string' } },
    args: { min: 1, max: 1 },
    audit: (ctx) => ({ detail: [ctx.args[0], ctx.flags['as']].filter((w) => typeof w === 'string').join(' ') }),
    async run(ctx) {
      // Not yet attached to the app it is being attached to.
      const addon = await authorizeAddon(ctx, addonName(ctx.args[0]!), 'addons:attach', false);
      const alias = typeof ctx.flags['as'] === 'string' ? parseAlias(ctx.flags['as']) : undefined;
      await ctx.services.addons.attach({ name: addon.name, app: ctx.app, alias, createdBy: createdBy(ctx.principal) }, textOutput(ctx.print));
      ctx.result({ name: addon.name, app: ctx.app, attached: true });
    },
  },
  {
    name: 'addons:detach',
    access: 'member',
    usage: 'addons:detach NAME [-a APP]',
    example: 'addons:detach myapp-db -a otherapp',
    summary: "detach an add-on from an app: its variables go in a release (the data stays)",
    app: true,
    args: { min: 1, max: 1 },
    audit: (ctx) => ({ detail: ctx.args[0] ?? '' }),
    async run(ctx) {
      assertNotDeployOnly(ctx, 'addons:detach');
      const name = addonName(ctx.args[0]!);
      await ctx.services.addons.detach({ name, app: ctx.app, createdBy: createdBy(ctx.principal) }, textOutput(ctx.print));
      ctx.result({ name, app: ctx.app, attached: false });
    },
  },
  {
    name: 'addons:destroy',
    access: 'checked-by-command',
    usage: 'addons:destroy NAME --confirm NAME [-a APP]',
    example: 'addons:destroy myapp-db --confirm myapp-db',
    summary: 'remove a detached add-on and its data, after a final backup',
    app: 'optional',
    options: { confirm: { type: 'string' } },
    args: { min: 1, max: 1 },
    audit: (ctx) => ({ detail: ctx.args[0] ?? '' }),
    async run(ctx) {
      const name = addonName(ctx.args[0]!);
      if (ctx.flags['confirm'] !== name) {
        throw new RackError('bad_argument', `this removes ${name} and its data (after a final backup); to go on, run: addons:destroy ${name} --confirm ${name}`);
      }
      await authorizeAddon(ctx, name, 'addons:destroy');
      const out = textOutput(ctx.print);
      const by = createdBy(ctx.principal);
      await ctx.services.addons.destroy(name, (addon) => ctx.services.backups.finalBackup(addon, by, out), out);
      ctx.result({ name, destroyed: true });
      out.header(`Destroyed ${name}`);
    },
  },
  {
    name: 'addons:backup',
    access: 'checked-by-command',
    usage: 'addons:backup NAME [-a APP]',
    example: 'addons:backup myapp-db',
    summary: 'take a backup of an add-on now',
    app: 'optional',
    args: { min: 1, max: 1 },
    audit: (ctx) => ({ detail: ctx.args[0] ?? '' }),
    async run(ctx) {
      const addon = await authorizeAddon(ctx, addonName(ctx.args[0]!), 'addons:backup');
      const started = Date.now();
      const record = await ctx.services.backups.backup(addon.name, createdBy(ctx.principal));
      ctx.result(record);
      ctx.print(`-----> Backed up ${addon.name}: ${record.id} (${formatBytes(record.bytes)}, ${((Date.now() - started) / 1000).toFixed(1)} s)`);
    },
  },
  {
    name: 'addons:backups',
    access: 'checked-by-command',
    usage: 'addons:backups NAME [-a APP] [--json]',
    example: 'addons:backups myapp-db',
    summary: "list an add-on's backups, newest first",
    app: 'optional',
    json: true,
    args: { min: 1, max: 1 },
    async run(ctx) {
      const addon = await authorizeAddon(ctx, addonName(ctx.args[0]!), 'addons:backups');
      const list = await ctx.services.backups.list(addon.name);
      if (ctx.flags['json']) return ctx.printJson(list.map(({ file: _file, ...b }) => b));
      if (list.length === 0) return ctx.print(`${addon.name} has no backups yet: addons:backup ${addon.name}`);
      const rows = list.map((b) => [b.id, timestamp(b.createdAt), formatBytes(b.bytes), b.trigger, b.createdBy]);
      for (const line of table([['ID', 'TAKEN', 'SIZE', 'WHY', 'BY'], ...rows])) ctx.print(line);
    },
  },
  {
    name: 'addons:restore',
    access: 'checked-by-command',
    usage: 'addons:restore NAME BACKUP [-a APP]',
    example: 'addons:restore myapp-db b3',
    summary: "replace an add-on's data with a backup (b3, or OTHER:b3); a backup of it is taken first",
    app: 'optional',
    args: { min: 2, max: 2 },
    audit: (ctx) => ({ detail: `${ctx.args[0] ?? ''} ${ctx.args[1] ?? ''}` }),
    async run(ctx) {
      const addon = await authorizeAddon(ctx, addonName(ctx.args[0]!), 'addons:restore');
      const backup = await findBackup(ctx, addon.name, ctx.args[1]!);
      const out = textOutput(ctx.print);
      const started = Date.now();
      const { safety } = await ctx.services.backups.restore(addon.name, backup, createdBy(ctx.principal), out);
      ctx.result({ name: addon.name, restored: `${backup.addon}:${backup.id}`, safety: safety.id });
      out.header(`Restored ${addon.name} in ${((Date.now() - started) / 1000).toFixed(1)} s; undo with: addons:restore ${addon.name} ${safety.id}`);
    },
  },
  {
    name: 'addons:export',
    access: 'checked-by-command',
    usage: 'addons:export NAME [-a APP] > dump',
    example: 'addons:export myapp-db > dump.sql',
    summary: "stream an add-on's data to stdout (pg_dump -Fc, or an RDB file)",
    app: 'optional',
    args: { min: 1, max: 1 },
    audit: (ctx) => ({ detail: ctx.args[0] ?? '' }),
    async run(ctx) {
      const addon = await authorizeAddon(ctx, addonName(ctx.args[0]!), 'addons:export');
      const session = requireSession(ctx, 'addons:export');
      if (session.pty) throw new RackError('bad_argument', 'addons:export writes binary data: run it without ssh -t, into a file');
      await ctx.services.backups.export(addon.name, { stdout: session.stdout, abort: session.abort });
    },
  },
  {
    name: 'addons:import',
    access: 'checked-by-command',
    usage: 'addons:import NAME [-a APP] < dump',
    example: 'addons:import myapp-db < dump.sql',
    summary: "replace an add-on's data with a dump on stdin (as addons:export writes); a backup is taken first",
    app: 'optional',
    args: { min: 1, max: 1 },
    audit: (ctx) => ({ detail: ctx.args[0] ?? '' }),
    async run(ctx) {
      const addon = await authorizeAddon(ctx, addonName(ctx.args[0]!), 'addons:import');
      const session = requireSession(ctx, 'addons:import');
      const out = textOutput(ctx.print);
      const { safety } = await ctx.services.backups.import(addon.name, session.stdin, createdBy(ctx.principal), out);
      out.header(`Imported into ${addon.name}; undo with: addons:restore ${addon.name} ${safety.id}`);
    },
  },
  {
    name: 'addons:connect',
    access: 'checked-by-command',
    usage: 'addons:connect NAME [-a APP] [-- CLIENT-ARGS...]',
    example: 'addons:connect myapp-db',
    summary: 'psql or redis-cli on an add-on (ssh -t for a terminal)',
    app: 'optional',
    args: { min: 1, max: 40 },
    audit: (ctx) => ({ detail: ctx.args[0] ?? '' }),
    async run(ctx) {
      const addon = await authorizeAddon(ctx, addonName(ctx.args[0]!), 'addons:connect');
      const session = requireSession(ctx, 'addons:connect');
      // On the network of an attached app the caller is a member of: where the client lands is
      // where the caller could already run code.
      const attached = (await ctx.services.addons.attachedApps(addon.name)).map((a) => a.app);
      const app = attached.find((a) => ctx.principal.role === 'admin' || ctx.principal.apps.includes(a));
      if (app === undefined) throw new RackError('bad_argument', `${addon.name} is attached to no app; attach it to connect (the client runs on that app's network)`);
      const env: Record<string, string> = { RACK_ADDON_HOST: addon.name, RACK_ADDON_PASSWORD: addon.password };
      if (addon.user) env['RACK_ADDON_USER'] = addon.user;
      if (addon.database) env['RACK_ADDON_DATABASE'] = addon.database;
      // Words go to the client as an argument list; no shell sees them.
      const code = await ctx.services.runtime.services.runClient({
        addon: addon.name,
        image: addon.image,
        app,
        network: await ctx.services.runtime.networks.ensure(app),
        env,
        args: ctx.args.slice(1),
        tty: session.pty,
        stdin: session.stdin,
        stdout: session.stdout,
        stderr: session.stderr,
        abort: session.abort,
      });
      if (code !== 0) throw new RackError('addon_failed', `${KINDS[addon.kind].client} exited with status ${code}`, { exitCode: code });
    },
  },
];
