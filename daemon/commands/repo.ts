import { createdBy } from '../access/principal.js';
import { RackError } from '../rack-error.js';
import type { RepoLink } from '../store/records.js';
import { isReviewAppOf } from '../workflows/review-apps.js';
import { table, timestamp, type Command, type CommandContext } from './command.js';

const MAX_TOKEN_INPUT = 4096;

/** What repo:info shows of a link: never the secret or the token, only whether they are set. */
function view(link: RepoLink, webhookUrl: string) {
  return {
    app: link.app,
    url: link.url,
    transport: link.transport,
    branch: link.branch,
    webhookUrl,
    secret: 'set',
    token: link.token !== undefined,
    statusApi: link.statusApi ?? null,
    deployKey: link.deployKey ?? null,
    reviewApps: link.reviewApps === true,
    createdAt: link.createdAt,
    createdBy: link.createdBy,
    lastDelivery: link.lastDelivery ?? null,
  };
}

export const repoCommands: Command[] = [
  {
    name: 'repo:connect',
    access: 'member',
    usage: 'repo:connect URL [--branch main] [--token-stdin] [--status-api URL] [-a APP]',
    example: 'repo:connect https://github.com/me/myapp --branch main -a myapp',
    summary: "deploy the app from a repository's pushes (its webhook); prints the webhook URL and secret",
    app: true,
    options: { branch: { type: 'string' }, 'token-stdin': { type: 'boolean' }, 'status-api': { type: 'string' } },
    args: { min: 1, max: 1 },
    // The URL as given is kept, not a secret (a password in it is refused); the token never is.
    audit: (ctx) => ({ detail: `${ctx.args[0]?.slice(0, 200) ?? ''} ${typeof ctx.flags['branch'] === 'string' ? ctx.flags['branch'] : 'main'}`.trim() }),
    async run(ctx) {
      let token: string | undefined;
      if (ctx.flags['token-stdin'] === true) {
        token = (await ctx.readInput(MAX_TOKEN_INPUT)).trim();
        if (token === '') throw new RackError('bad_argument', '--token-stdin read nothing: pipe the token in (echo "$TOKEN" | ssh rack repo:connect ...)');
      }
      const branch = typeof ctx.flags['branch'] === 'string' ? ctx.flags['branch'] : 'main';
      const { link, secret, webhookUrl } = await ctx.services.repos.connect({
        app: ctx.app,
        url: ctx.args[0]!,
        branch,
        ...(token === undefined ? {} : { token }),
        ...(typeof ctx.flags['status-api'] === 'string' ? { statusApi: ctx.flags['status-api'] } : {}),
        createdBy: createdBy(ctx.principal),
      });
      ctx.print(`-----> Connected ${ctx.app} to ${link.url} (${link.branch})`);
      ctx.print('       Add a webhook at the host (push events, JSON):');
      ctx.print(`       URL:     ${webhookUrl}`);
      ctx.print(`       Secret:  ${secret}`);
      ctx.print('       The secret is shown this once; repo:connect again makes a new one.');
      if (link.deployKey) {
        ctx.print('       Add this deploy key (read-only) at the host:');
        ctx.print(`       ${link.deployKey}`);
      }
      ctx.result({ ...view(link, webhookUrl), secret });
    },
  },
  {
    name: 'repo:info',
    access: 'deploy',
    usage: 'repo:info [-a APP] [--json]',
    example: 'repo:info -a myapp',
    summary: 'show the connected repository, its webhook URL and the last delivery',
    app: true,
    json: true,
    args: { min: 0, max: 0 },
    async run(ctx) {
      const link = await ctx.services.repos.require(ctx.app);
      const shown = view(link, ctx.services.repos.webhookUrl(ctx.app));
      if (ctx.flags['json']) return ctx.printJson(shown);
      const last = link.lastDelivery;
      const rows = [
        ['Repository:', link.url],
        ['Branch:', link.branch],
        ['Webhook:', shown.webhookUrl],
        ['Secret:', 'set (shown once at repo:connect; connect again for a new one)'],
        ['Token:', link.token === undefined ? 'none' : 'set'],
        ...(link.deployKey ? [['Deploy key:', link.deployKey]] : []),
        ['Review apps:', link.reviewApps === true ? 'on' : 'off'],
        ['Connected:', `${timestamp(link.createdAt)} by ${link.createdBy}`],
        ['Last delivery:', last ? `${timestamp(last.at)} ${last.host} ${last.event} ${last.id}${last.commit ? ` ${last.commit.slice(0, 7)}` : ''}: ${last.result}` : 'none yet'],
      ];
      ctx.print(`=== ${ctx.app} repository`);
      for (const line of table(rows)) ctx.print(line);
    },
  },
  {
    name: 'repo:disconnect',
    access: 'member',
    usage: 'repo:disconnect [-a APP]',
    example: 'repo:disconnect -a myapp',
    summary: "stop deploying from the connected repository (its webhook is then refused)",
    app: true,
    args: { min: 0, max: 0 },
    audit: () => ({ detail: '' }),
    async run(ctx) {
      await ctx.services.repos.disconnect(ctx.app);
      ctx.print(`-----> Disconnected ${ctx.app} from its repository; remove the webhook at the host too`);
      ctx.result({ app: ctx.app, connected: false });
    },
  },
  ...(['enable', 'disable'] as const).map(
    (word): Command => ({
      name: `reviewapps:${word}`,
      access: 'member',
      usage: `reviewapps:${word} [-a APP]`,
      example: `reviewapps:${word} -a myapp`,
      summary:
        word === 'enable'
          ? 'make APP-pr-N for each pull request opened or updated at the connected repository (destroyed when it closes)'
          : 'stop making review apps (those there stay until their pull request closes)',
      app: true,
      args: { min: 0, max: 0 },
      audit: () => ({ detail: word }),
      async run(ctx) {
        await ctx.services.repos.require(ctx.app);
        await ctx.services.store.repos.setReviewApps(ctx.app, word === 'enable');
        ctx.print(`-----> Review apps ${word === 'enable' ? 'on' : 'off'} for ${ctx.app}`);
        if (word === 'enable') ctx.print('       Send pull request (merge request) events to the same webhook as pushes.');
        ctx.result({ app: ctx.app, reviewApps: word === 'enable' });
      },
    }),
  ),
  {
    name: 'reviewapps',
    access: 'deploy',
    usage: 'reviewapps [-a APP] [--json]',
    example: 'reviewapps -a myapp',
    summary: "list the app's review apps (APP-pr-N): release and URL",
    app: true,
    json: true,
    args: { min: 0, max: 0 },
    async run(ctx) {
      const link = await ctx.services.repos.require(ctx.app);
      const rows = await reviewApps(ctx);
      if (ctx.flags['json']) return ctx.printJson(rows);
      ctx.print(`=== ${ctx.app} review apps (${link.reviewApps === true ? 'on' : 'off'})`);
      if (rows.length === 0) return ctx.print('none');
      for (const line of table(rows.map((r) => [r.name, r.release ?? '-', r.url]))) ctx.print(line);
    },
  },
];

async function reviewApps(ctx: CommandContext): Promise<{ name: string; pullRequest: number; release: string | null; url: string }[]> {
  const apps = (await ctx.services.store.listApps()).filter((a) => isReviewAppOf(ctx.app, a.name));
  return apps
    .map((a) => ({
      name: a.name,
      pullRequest: Number(a.name.slice(ctx.app.length + 4)),
      release: a.currentRelease ? `v${a.currentRelease}` : null,
      url: ctx.services.supervisor.url(a.name),
    }))
    .sort((a, b) => a.pullRequest - b.pullRequest);
}
