import test from 'ava';
import { readAppJson } from '../daemon/build/app-json.js';
import { nothingToStart, singlePageApp } from '../daemon/build/start-check.js';
import { parseListening } from '../daemon/supervisor/listening-ports.js';
import { describeProbe, portReason } from '../daemon/supervisor/health-check.js';

test('app.json: formation, the check content and Dokku predeploy are read; keys rack does not run are named', (t) => {
  const doc = readAppJson(
    JSON.stringify({
      formation: { web: { quantity: 0 }, worker: { quantity: 2 }, bad: { quantity: -1 }, huge: { quantity: 1000 } },
      healthchecks: { web: [{ path: '/up', content: 'ok' }] },
      scripts: { dokku: { predeploy: 'node migrate.js', postdeploy: 'x' }, postdeploy: 'y' },
    }),
  );
  t.deepEqual(doc.formation, { web: 0, worker: 2 });
  t.deepEqual(doc.healthcheck, { path: '/up', content: 'ok' });
  t.is(doc.predeploy, 'node migrate.js');
  t.is(doc.warnings.length, 4);
  t.regex(doc.warnings.join('\n'), /formation\.bad: quantity must be a whole number from 0 to 100/);
  t.regex(doc.warnings.join('\n'), /scripts\.dokku\.postdeploy is not run by rack/);
  t.regex(doc.warnings.join('\n'), /scripts\.postdeploy \(Heroku/);
  t.deepEqual(readAppJson('{').warnings.length, 1);
  t.regex(readAppJson('[1]').warnings[0]!, /must hold an object/);
  t.deepEqual(readAppJson('{"formation": {"__proto__": {"quantity": 1}}}').formation, undefined, 'a key JSON makes own, but no type');
});

test('nothing to start: said only when the nodejs buildpack has the last word and nothing names a process', (t) => {
  const base = { packageJson: '{"main": "src/main.js"}', hasServerJs: false, hasProcfileTypes: false, buildpacks: [] as string[] };
  t.regex(nothingToStart(base) ?? '', /add "start": "node src\/main\.js"/);
  t.is(nothingToStart({ ...base, packageJson: '{"scripts": {"start": "node a.js"}}' }), undefined);
  t.is(nothingToStart({ ...base, hasServerJs: true }), undefined);
  t.is(nothingToStart({ ...base, hasProcfileTypes: true }), undefined);
  t.is(nothingToStart({ ...base, buildpacks: ['nodejs', 'static'] }), undefined, 'static gives the web process');
  t.regex(nothingToStart({ ...base, buildpacks: ['heroku/nodejs'] }) ?? '', /nothing would start/);
  t.is(nothingToStart({ ...base, packageJson: undefined }), undefined);
  t.is(nothingToStart({ ...base, packageJson: '{oops' }), undefined, 'the buildpack names a broken package.json');
  t.regex(nothingToStart({ ...base, packageJson: '{"main": "$(rm -rf /)"}' }) ?? '', /node index\.js/, 'a strange main is not echoed');
  t.regex(nothingToStart({ ...base, packageJson: '{"main": "index.js", "workspaces": ["packages/web"]}' }) ?? '', /workspace root.*"start": "npm start -w PACKAGE"/);
  const kit = JSON.stringify({ scripts: { build: 'vite build' }, devDependencies: { '@sveltejs/kit': '2', vite: '8' } });
  t.regex(nothingToStart({ ...base, packageJson: kit }) ?? '', /adapter-node .*"start": "node build"/, 'SvelteKit: what its docs say, not node index.js');
});

test('a single-page app is told from a server framework by its build script and dependencies', (t) => {
  const vite = { scripts: { build: 'vite build' }, devDependencies: { vite: '^8' } };
  t.is(singlePageApp(JSON.stringify(vite)), 'vite');
  t.is(singlePageApp(JSON.stringify({ scripts: { build: 'react-scripts build' }, dependencies: { 'react-scripts': '5' } })), 'react-scripts');
  t.is(singlePageApp(JSON.stringify({ ...vite, devDependencies: { vite: '^8', '@sveltejs/kit': '^2' } })), undefined, 'SvelteKit builds a server');
  t.is(singlePageApp(JSON.stringify({ ...vite, dependencies: { '@react-router/dev': '7' } })), undefined);
  t.is(singlePageApp(JSON.stringify({ devDependencies: { vite: '^8' } })), undefined, 'no build script, nothing to serve');
  t.is(singlePageApp(JSON.stringify({ scripts: { build: 'tsc' }, dependencies: { express: '4' } })), undefined);
  t.is(singlePageApp('{oops'), undefined);
  t.is(singlePageApp(undefined), undefined);
});

test('listening ports are read from a /proc/net/tcp table; the health check names what it saw', (t) => {
  const table = [
    '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
    '   0: 00000000:0BB8 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1 1 0',
    '   1: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 2 1 0',
    '   2: 0100007F:0BB8 0100007F:9C40 01 00000000:00000000 00:00000000 00000000  1000        0 3 1 0',
    '   3: 0B00007F:82F3 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4 1 0',
  ].join('\n');
  t.deepEqual(parseListening(table), [3000, 8080]);
  t.regex(portReason(5000, [3000]) ?? '', /listens on port 3000, not on PORT \(5000\)/);
  t.regex(portReason(5000, []) ?? '', /nothing listens/);
  t.is(portReason(5000, [5000]), undefined);
  t.is(portReason(5000, undefined), undefined);
  t.is(describeProbe({ status: 502, contentFound: true }, '/x'), 'GET /x answered 502 (a web process must answer below 500)');
  t.is(describeProbe({ status: 200, contentFound: false }, '/', 'ok'), 'GET / answered 200 without "ok" in its body');
  t.is(describeProbe({ error: 'ECONNREFUSED' }, '/'), 'the last probe got no connection');
});
