import test from 'ava';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import * as S from '../daemon/api/schemas.js';
import { editDistance, suggestCommand } from '../daemon/commands/command-help.js';
import { allCommands } from '../daemon/commands/command-runner.js';
import { api } from './support/api-client.js';
import { RackDaemon } from './support/rack-daemon.js';

// The habits a Heroku user brings (issue 33): -a everywhere, help per command, "did you mean",
// logs -t, and one JSON shape per object over ssh and the API. Through a real rackd and ssh.

test('every command has an example, and it starts with its own name', (t) => {
  for (const c of allCommands()) {
    t.truthy(c.example, `${c.name} has no example`);
    t.true(c.example === undefined || c.example === c.name || c.example.startsWith(`${c.name} `), `${c.name}: ${c.example ?? ''}`);
  }
});

test('a typo is one edit away, a transposition included; far words suggest nothing', (t) => {
  t.is(editDistance('config', 'config'), 0);
  t.is(editDistance('cofnig', 'config'), 1);
  t.is(editDistance('domians:add', 'domains:add'), 1);
  t.is(editDistance('', 'ps'), 2);
  const names = allCommands().map((c) => c.name);
  t.is(suggestCommand('cofnig:set', names), 'config:set');
  t.is(suggestCommand('maintenence:off', names), 'maintenance:off');
  // As near to two commands: no guess.
  t.is(suggestCommand('maintenance:of', names), undefined);
  t.is(suggestCommand('relases', names), 'releases');
  t.is(suggestCommand('frobnicate', names), undefined);
});

let rack: RackDaemon;
let token: string;
test.before(async () => {
  rack = await RackDaemon.create();
  const dir = await rack.appRepo('node-hello', 'shop');
  const push = await rack.push(dir);
  if (push.code !== 0) throw new Error(push.stderr);
  const other = await rack.ssh(['apps:create', 'other']);
  if (other.code !== 0) throw new Error(other.stderr);
  token = await rack.createToken('shapes');
});
test.after.always(async () => {
  await rack?.destroy();
});

test('help COMMAND, COMMAND --help and -h show the usage and an example; config:set --help is no error', async (t) => {
  for (const words of [['help', 'config:set'], ['config:set', '--help'], ['config:set', '-h', '-a', 'shop']]) {
    const r = await rack.ssh(words);
    t.is(r.code, 0, `${words.join(' ')}: ${r.stderr}`);
    t.regex(r.stdout, /^Usage: ssh rack config:set KEY=VALUE/m, words.join(' '));
    t.regex(r.stdout, /^Example:\n {2}ssh rack config:set NODE_ENV=production/m, words.join(' '));
    t.is(r.stderr, '');
  }
  const run = await rack.ssh(['help', 'run']);
  t.regex(run.stdout, /^Usage: ssh rack run \[-a APP\] COMMAND/m);
  // Nothing ran: config:set --help changed no config.
  t.is((await rack.ssh(['config:get', 'NODE_ENV', '-a', 'shop'])).code, 1);
});

test('an unknown command gets "did you mean", in one line and a non-zero exit', async (t) => {
  const r = await rack.ssh(['cofnig:set', 'A=1']);
  t.is(r.code, 1);
  t.is(r.stderr, ' !     unknown command "cofnig:set"; did you mean config:set? (ssh rack help lists them)\n');
  const far = await rack.ssh(['frobnicate']);
  t.is(far.stderr, ' !     unknown command "frobnicate"; try: ssh rack help\n');
  const help = await rack.ssh(['help', 'maintenence:off']);
  t.regex(help.stderr, /did you mean maintenance:off\?/);
});

test('an unknown option is one line without the shell advice node adds', async (t) => {
  const r = await rack.ssh(['config:set', '--bogus', '-a', 'shop']);
  t.is(r.code, 1);
  t.is(r.stderr.split('\n').length, 2, r.stderr);
  t.notRegex(r.stderr, /positional argument|-- "/);
  t.regex(r.stderr, /Unknown option '--bogus'\. \(usage: config:set/);
});

test('logs -t is the follow flag, as Heroku has it', async (t) => {
  // -t with --until is refused as following is: the flag was taken for follow, not refused as unknown.
  const r = await rack.ssh(['logs', '-t', '--until', '1h', '-a', 'shop']);
  t.is(r.code, 1);
  t.is(r.stderr, ' !     -t follows new lines; it does not go with --until\n');
});

test('-a APP is accepted by the commands that name an add-on, a host or several apps', async (t) => {
  const addons = await rack.ssh(['addons', '-a', 'shop']);
  t.is(addons.code, 0, addons.stderr);
  t.regex(addons.stdout, /no add-ons yet/);
  t.is((await rack.ssh(['addons', '-a', 'nosuch'])).code, 1);
  const certs = JSON.parse((await rack.ssh(['certs', '-a', 'shop', '--json'])).stdout) as { host: string; app: string }[];
  t.deepEqual([...new Set(certs.map((c) => c.app))], ['shop']);
  const audit = JSON.parse((await rack.ssh(['audit', '-a', 'other', '--json'])).stdout) as { app: string; action: string }[];
  t.true(audit.length > 0 && audit.every((e) => e.app === 'other'));
  // certs:add HOST -a APP: the host must be APP's.
  const wrong = await rack.ssh(['certs:add', 'shop.localhost', '-a', 'other'], { input: '' });
  t.is(wrong.code, 1);
  t.is(wrong.stderr, ' !     shop.localhost is not a host of other: it is served by shop\n');
  const right = await rack.ssh(['certs:add', 'shop.localhost', '-a', 'shop'], { input: '' });
  t.is(right.code, 1);
  t.regex(right.stderr, /give the certificate chain and its key on stdin/);
  const remove = await rack.ssh(['certs:remove', 'shop.localhost', '-a', 'other']);
  t.regex(remove.stderr, /shop\.localhost is not a host of other/);
  // The older forms still work, and the app may come as -a.
  const add = await rack.ssh(['pipelines:create', 'line']);
  t.is(add.code, 0, add.stderr);
  const joined = await rack.ssh(['pipelines:add', '-a', 'other', '--pipeline', 'line', '--stage', 'staging']);
  t.is(joined.code, 0, joined.stderr);
  const both = await rack.ssh(['pipelines:remove', 'shop', '-a', 'other']);
  t.regex(both.stderr, /-a other and shop name two apps/);
});

test('-a on a command that only narrows is refused to a key without that app', async (t) => {
  const limited = await rack.createToken('limited', ['--app', 'other']);
  const answer = await api(rack, 'GET', '/api/v1/audit?app=shop', { token: limited });
  t.is(answer.status, 403, answer.text);
  const own = await api(rack, 'GET', '/api/v1/audit?app=other', { token: limited });
  t.is(own.status, 200, own.text);
});

test('one JSON shape per object: apps, apps:info, releases, ps and the API agree with the schemas', async (t) => {
  await rack.drained('shop');
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats.default(ajv);
  const check = (schema: S.JsonSchema, value: unknown, what: string) => {
    const validate = ajv.compile(schema);
    t.true(validate(value), `${what}: ${ajv.errorsText(validate.errors)}`);
  };
  const json = async (words: string[]) => {
    const r = await rack.ssh([...words, '--json']);
    t.is(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as unknown;
  };
  const apps = (await json(['apps'])) as { name: string; currentRelease: unknown }[];
  check(S.list(S.app), apps, 'apps --json');
  const info = (await json(['apps:info', '-a', 'shop'])) as { currentRelease: unknown };
  check(S.app, info, 'apps:info --json');
  t.is(info.currentRelease, 1);
  t.is(apps.find((a) => a.name === 'shop')!.currentRelease, info.currentRelease);
  t.is(apps.find((a) => a.name === 'other')!.currentRelease, null, 'no release yet: null, as apps:info says');
  check(S.list(S.release), await json(['releases', '-a', 'shop']), 'releases --json');
  const ps = (await json(['ps', '-a', 'shop'])) as { uptime: unknown; startedAt: string }[];
  check(S.list(S.process), ps, 'ps --json');
  t.is(typeof ps[0]!.uptime, 'number');
  t.is(new Date(ps[0]!.startedAt).toISOString(), ps[0]!.startedAt);
  check(S.maintenance, await json(['maintenance', '-a', 'shop']), 'maintenance --json');
  // The API answers the same objects in the same shapes.
  const viaApi = await api(rack, 'GET', '/api/v1/apps/shop', { token });
  t.is(viaApi.status, 200, viaApi.text);
  check(S.app, viaApi.json, 'GET /apps/shop');
  t.is((viaApi.json as { currentRelease: unknown }).currentRelease, info.currentRelease);
  const processes = await api(rack, 'GET', '/api/v1/apps/shop/processes', { token });
  check(S.list(S.process), processes.json, 'GET /apps/shop/processes');
  const text = await rack.ssh(['apps:info', '-a', 'shop']);
  t.regex(text.stdout, /^currentRelease:\s+v1$/m, 'the text keeps v1 for the eye');
});
