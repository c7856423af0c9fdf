import { table, type Command } from './command.js';

function uptime(startedAt: string, running: boolean): string {
  if (!running) return '-';
  const s = Math.max(0, Math.round((Date.now() - Date.parse(startedAt)) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  return `${Math.round(s / 3600)}h`;
}

export const psCommands: Command[] = [
  {
    name: 'ps',
    access: 'member',
    usage: 'ps [-a APP] [--json]',
    summary: "list an app's processes: type, release, state, uptime",
    app: true,
    json: true,
    args: { min: 0, max: 0 },
    async run(ctx) {
      await ctx.services.store.requireApp(ctx.app);
      const processes = (await ctx.services.runtime.listProcesses(ctx.app)).sort((a, b) => a.type.localeCompare(b.type));
      const rows = processes.map((p) => ({
        name: `${p.type}.${p.name.split('.').pop()}`,
        type: p.type,
        release: p.release,
        state: p.running ? 'up' : 'down',
        startedAt: p.startedAt,
        uptime: uptime(p.startedAt, p.running),
      }));
      if (ctx.flags['json']) return ctx.printJson(rows);
      if (rows.length === 0) return ctx.print(`${ctx.app} has no processes running`);
      const lines = rows.map((r) => [r.name, `v${r.release}`, r.state, r.uptime]);
      for (const line of table([['PROCESS', 'RELEASE', 'STATE', 'UPTIME'], ...lines])) ctx.print(line);
    },
  },
];
