import type { AppEvent, AppEvents } from '../app-events.js';
import type { LogHub } from '../logs/log-hub.js';

/**
 * Events that belong in an app's log too, so `logs` and every drain see them: a crash loop in
 * Heroku's words (`heroku[web.1]: State changed from up to crashed` is `rack[web.1]: ...` here), a
 * failed build, a failed deploy.
 */
export function tellEventsInLogs(events: AppEvents, logs: LogHub): () => void {
  return events.on((e) => {
    const line = eventLine(e);
    if (line) logs.push({ time: e.at, app: e.app, type: line.type, source: `rack[${line.proc}]`, text: line.text });
  });
}

export function eventLine(e: AppEvent): { proc: string; type: string; text: string } | undefined {
  const d = e.data;
  if (e.kind === 'crash' && e.action === 'crashed') {
    const proc = typeof d['process'] === 'string' ? d['process'] : 'process';
    const type = typeof d['type'] === 'string' ? d['type'] : 'process';
    return { proc, type, text: `State changed from up to crashed (exited ${String(d['exits'] ?? '?')} times in ${String(d['withinSeconds'] ?? '?')} s, last status ${String(d['exitCode'] ?? '?')})` };
  }
  // R15 is written to the log where the kill is seen (supervisor/process-events.ts); R14 only here.
  if (e.kind === 'crash' && e.action === 'memory' && d['error'] === 'R14') {
    const proc = typeof d['process'] === 'string' ? d['process'] : 'process';
    const type = typeof d['type'] === 'string' ? d['type'] : 'process';
    const used = Number(d['memoryBytes']);
    const limit = Number(d['limitBytes']);
    const mem = `mem=${Math.round(used / 2 ** 20)}M(${((used / limit) * 100).toFixed(1)}%) of ${Math.round(limit / 2 ** 20)}M`;
    return { proc, type, text: `Error R14 (Memory quota exceeded): ${mem}, the kernel reclaiming its memory to keep it under the limit` };
  }
  if (e.kind === 'build' && e.action === 'failed') return { proc: 'build', type: 'build', text: `Build b${String(d['build'])} failed: ${String(d['error'] ?? '')}` };
  if ((e.kind === 'release' || e.kind === 'rollback') && e.action === 'failed') {
    return { proc: 'deploy', type: 'deploy', text: `Deploy of v${String(d['version'])} failed: ${String(d['error'] ?? '')}` };
  }
  return undefined;
}
