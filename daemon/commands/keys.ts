import { RackError } from '../rack-error.js';
import { parsePublicKey } from '../ssh/authorized-keys.js';
import type { KeyRecord } from '../store/records.js';
import { table, type Command } from './command.js';
import { GRANT_OPTIONS, grantAudit, grantFromFlags } from './grant-flags.js';

const KEY_NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;
const MAX_KEY_INPUT = 16 * 1024;

function assertKeyName(name: string): string {
  if (!KEY_NAME.test(name)) {
    throw new RackError('bad_argument', `invalid key name ${JSON.stringify(name.slice(0, 40))}: use letters, digits, . _ @ -`);
  }
  return name;
}

const describe = (k: KeyRecord) => ({ name: k.name, role: k.role, apps: k.apps, fingerprint: k.fingerprint, createdAt: k.createdAt });

/** Who may do what: admin keys, app keys and deploy-only keys (as Convox's deploy keys). */
export const keysCommands: Command[] = [
  {
    name: 'keys',
    access: 'admin',
    usage: 'keys [--json]',
    example: 'keys',
    summary: 'list the keys and their rights',
    app: false,
    json: true,
    args: { min: 0, max: 0 },
    async run(ctx) {
      const keys = await ctx.services.store.listKeys();
      if (ctx.flags['json']) return ctx.printJson(keys.map(describe));
      const rows = keys.map((k) => [k.name, k.role, k.role === 'admin' ? '*' : k.apps.join(',') || '-', k.fingerprint]);
      for (const line of table([['NAME', 'ROLE', 'APPS', 'FINGERPRINT'], ...rows])) ctx.print(line);
    },
  },
  {
    name: 'keys:add',
    access: 'admin',
    usage: 'keys:add NAME [--app APP ...] [--deploy-only] < key.pub',
    example: 'keys:add alice --app myapp < alice.pub',
    summary: 'add a key: admin, or limited to apps, or deploy-only for apps',
    app: false,
    options: GRANT_OPTIONS,
    args: { min: 1, max: 1 },
    audit: grantAudit,
    async run(ctx) {
      const name = assertKeyName(ctx.args[0]!);
      const { role, apps } = await grantFromFlags(ctx);
      const input = await ctx.readInput(MAX_KEY_INPUT);
      if (input.trim() === '') throw new RackError('bad_argument', 'send the public key on stdin: ssh rack keys:add NAME < key.pub');
      const key = parsePublicKey(input.trim().split(/\r?\n/)[0]!);
      const record: KeyRecord = {
        name,
        publicKey: key.line,
        fingerprint: key.fingerprint,
        role,
        apps,
        createdAt: new Date().toISOString(),
      };
      await ctx.services.store.addKey(record);
      ctx.result(describe(record));
      ctx.print(`-----> Added ${record.role} key ${name} (${key.fingerprint})${apps.length ? ` for ${apps.join(', ')}` : ''}`);
    },
  },
  {
    name: 'keys:remove',
    access: 'admin',
    usage: 'keys:remove NAME',
    example: 'keys:remove alice',
    summary: 'remove a key (not the last admin key)',
    app: false,
    args: { min: 1, max: 1 },
    audit: (ctx) => ({ detail: ctx.args[0] ?? '' }),
    async run(ctx) {
      const key = await ctx.services.store.removeKey(assertKeyName(ctx.args[0]!));
      ctx.result(describe(key));
      ctx.print(`-----> Removed key ${key.name} (${key.fingerprint})`);
    },
  },
];
