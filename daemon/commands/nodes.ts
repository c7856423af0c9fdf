import { formatSize } from '../config.js';
import type { NodeInfo } from '../runtime/swarm-nodes.js';
import { textOutput, type UserOutput } from '../user-output.js';
import { table, type Command, type CommandContext, type Services } from './command.js';

/**
 * Moves this rack's processes off a node without a failed request: the node takes nothing new,
 * each app with processes there is restarted as a deploy is (new processes healthy on the other
 * nodes, the router switched, the old ones drained), then the node is drained for anything else.
 */
async function moveOff(services: Services, name: string, out: UserOutput): Promise<NodeInfo> {
  const { nodes } = services.runtime;
  out.header(`Draining ${name}`);
  const node = await nodes.pause(name);
  const apps = [...new Set((await services.runtime.listProcesses()).filter((p) => p.node === node.name).map((p) => p.app))].sort();
  for (const app of apps) {
    out.header(`Moving ${app}'s processes off ${node.name}`);
    await services.processes.restart({ app, type: undefined }, out);
  }
  return nodes.drain(node.name, (line) => out.detail(line));
}

/** An admin's change to one node, audited, answered with the node as it is after. */
function nodeChange(name: string, summary: string, change: (ctx: CommandContext, out: UserOutput) => Promise<NodeInfo>): Command {
  return {
    name,
    access: 'admin',
    usage: `${name} NAME`,
    example: `${name} node-2`,
    summary,
    app: false,
    args: { min: 1, max: 1 },
    audit: (ctx) => ({ detail: ctx.args[0] ?? '' }),
    async run(ctx) {
      ctx.result(await change(ctx, textOutput(ctx.print)));
    },
  };
}

/** The machines of a rack: one by default, the Swarm's nodes when rackd's engine manages one. */
export const nodesCommands: Command[] = [
  {
    name: 'nodes',
    access: 'admin',
    usage: 'nodes [--json]',
    example: 'nodes',
    summary: "list the machines processes run on: name, address, state, processes, memory",
    app: false,
    json: true,
    args: { min: 0, max: 0 },
    async run(ctx) {
      const nodes = await ctx.services.runtime.nodes.list();
      if (ctx.flags['json']) return ctx.printJson(nodes);
      const rows = nodes.map((n) => [
        n.self ? `${n.name} *` : n.name,
        n.role,
        n.address,
        n.state,
        n.availability,
        String(n.processes),
        n.memoryBytes > 0 ? formatSize(n.memoryBytes) : '-',
      ]);
      for (const line of table([['NAME', 'ROLE', 'ADDRESS', 'STATE', 'AVAILABILITY', 'PROCESSES', 'MEMORY'], ...rows])) ctx.print(line);
      if (nodes.length === 1 && nodes[0]!.role === 'local') ctx.print('(one machine; nodes:join-command says how to add more)');
    },
  },
  {
    name: 'nodes:join-command',
    access: 'admin',
    usage: 'nodes:join-command',
    example: 'nodes:join-command',
    summary: 'print the command a new machine runs to join this rack',
    app: false,
    args: { min: 0, max: 0 },
    async run(ctx) {
      const command = await ctx.services.runtime.nodes.joinCommand();
      ctx.result({ command });
      ctx.print(command);
    },
  },
  nodeChange('nodes:drain', 'place no more processes on a machine, and wait until its processes run elsewhere', async (ctx, out) => {
    const node = await moveOff(ctx.services, ctx.args[0]!, out);
    out.header(`${node.name} is drained: no process of this rack runs there (nodes:activate ${node.name} takes it back)`);
    return node;
  }),
  nodeChange('nodes:activate', 'place processes on a drained machine again', async (ctx, out) => {
    const node = await ctx.services.runtime.nodes.activate(ctx.args[0]!);
    out.header(`${node.name} takes processes again (Swarm places new ones there; running ones stay where they are)`);
    return node;
  }),
  nodeChange('nodes:remove', 'drain a machine, then take it out of this rack', async (ctx, out) => {
    const node = await moveOff(ctx.services, ctx.args[0]!, out);
    await ctx.services.runtime.nodes.remove(node.name);
    out.header(`Removed ${node.name}; on that machine, \`docker swarm leave\` ends its side`);
    return node;
  }),
];
