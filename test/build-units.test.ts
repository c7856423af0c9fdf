import test from 'ava';
import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BuildLog, TRUNCATED } from '../daemon/build/build-log.js';
import { BuildSlots } from '../daemon/build/build-slots.js';
import { canonicalBuildpackPath, lexicalBuildpackPath } from '../daemon/build/buildpack-path.js';
import { builderFlags, parseDockerfile } from '../daemon/build/dockerfile-parser.js';
import { checkAncestry, stepCheck } from '../daemon/build/dockerfile-audit.js';
import { isInternalAddress, pinFetch } from '../daemon/build/fetch-destination.js';
import { RackError } from '../daemon/rack-error.js';
import { checkDockerfile, isAllowedBase } from '../daemon/build/dockerfile-policy.js';
import { healthCheckFromAppJson } from '../daemon/build/app-json.js';
import { loadConfig, parseDockerBases } from '../daemon/config.js';
import { lineSplitter } from '../daemon/line-splitter.js';

// Pure functions of the build side: the Dockerfile policy, the buildpack path canonicaliser, the
// bounded log and line splitter, the build slots.

const ok = (text: string, bases: string[] = []) => checkDockerfile(text, bases);
const refused = (t: { throws: (f: () => unknown, e: object) => unknown }, text: string, message: RegExp, bases: string[] = []) =>
  t.throws(() => checkDockerfile(text, bases), { message });

test('the Dockerfile policy allows the stack image, scratch, operator bases and earlier stages', (t) => {
  t.notThrows(() => ok('FROM rack/stack:latest\nRUN true\n'));
  t.notThrows(() => ok('FROM rack/stack\n'));
  t.notThrows(() => ok('FROM docker.io/rack/stack:latest\n'));
  t.notThrows(() => ok('FROM scratch\n'));
  t.notThrows(() => ok('FROM debian:bookworm\n', ['debian']));
  t.notThrows(() => ok('FROM library/debian:12\n', ['docker.io/library/debian']));
  t.notThrows(() => ok('FROM node:20\n', ['node:20']));
  t.notThrows(() => ok('FROM --platform=linux/amd64 rack/stack AS build\nRUN make\nFROM build AS second\nFROM rack/stack\nCOPY --from=build /out /app\nCOPY --from=1 /x /y\nCOPY --from=SECOND /x /y\n'));
  t.notThrows(() => ok('# escape=`\nFROM rack/stack\nRUN echo a `\n  b\n'));
  t.notThrows(() => ok('FROM rack/stack\nADD local.tar.gz /srv/\nADD ["a b", "/c"]\n'));
});

test('the Dockerfile policy refuses other images, variables, remote ADD and mounts, naming the line', (t) => {
  refused(t, 'FROM rack/victim:b1\n', /^Dockerfile line 1: FROM rack\/victim:b1 is not allowed: start FROM the stack image rack\/stack$/);
  refused(t, '\n# comment\nFROM rack/stack:b1\n', /^Dockerfile line 3: FROM rack\/stack:b1 is not allowed/); // app "stack"'s image
  refused(t, 'FROM node:18\n', /FROM node:18 is not allowed: start FROM the stack image rack\/stack or a base the operator allows \(node:20\)/, ['node:20']);
  refused(t, 'FROM debian@sha256:' + 'a'.repeat(64) + '\n', /not allowed/, ['debian']);
  refused(t, 'FROM sha256:' + 'b'.repeat(64) + '\n', /not allowed/);
  refused(t, 'ARG BASE=rack/victim:b1\nFROM $BASE\n', /^Dockerfile line 2: FROM may not use variables/);
  refused(t, 'FROM rack/stack\nFROM ${X:-rack/stack}\n', /line 2: FROM may not use variables/);
  refused(t, 'FROM rack/stack AS a\nFROM a\nFROM rack/victim:b1\n', /line 3/);
  refused(t, 'FROM rack/stack\nCOPY --from=rack/victim:b1 /app /app\n', /^Dockerfile line 2: COPY --from=rack\/victim:b1 is not an earlier build stage/);
  refused(t, 'FROM rack/stack\nCOPY --from=0 /a /b\n', /COPY --from=0 names no earlier build stage/);
  refused(t, 'FROM rack/stack AS a\nCOPY --from=a /a /b\n', /not an earlier build stage/); // its own stage
  refused(t, 'FROM rack/stack\nCOPY --chown=1:1 \\\n  --from=$IMG /a /b\n', /line 2: COPY --from may not use variables/);
  refused(t, 'FROM rack/stack\nRUN --mount=type=bind,from=rack/victim:b1,target=/v cat /v/x\n', /line 2: RUN --mount --from=rack\/victim:b1/);
  refused(t, 'FROM rack/stack\nADD http://127.0.0.1:8080/secret /s\n', /^Dockerfile line 2: ADD of a remote source \(http:\/\/127\.0\.0\.1:8080\/secret\) is not allowed/);
  refused(t, 'FROM rack/stack\nADD --checksum=sha256:00 HTTPS://x/y /s\n', /ADD of a remote source/);
  refused(t, 'FROM rack/stack\nADD ["git@github.com:a/b.git", "/s"]\n', /ADD of a remote source/);
  refused(t, 'FROM rack/stack\nADD git://host/repo /s\n', /ADD of a remote source/);
  refused(t, 'FROM rack/stack\nARG U=http://x\nADD $U /s\n', /line 3: ADD sources may not use variables/);
  refused(t, 'FROM rack/stack\nONBUILD COPY --from=rack/victim:b1 /a /b\n', /line 2: COPY --from=rack\/victim:b1/);
  refused(t, 'FROM rack/stack\nONBUILD ADD http://x/y /z\n', /ADD of a remote source/);
  refused(t, 'RUN true\n', /no FROM line/);
});

test('the Dockerfile parser joins continuations, skips comments inside them and keeps start lines', (t) => {
  const ins = parseDockerfile('# syntax=x\n\nFROM rack/stack\nRUN a \\\n# note\n  b \\\n\n  c\ncmd ["x"]\n').instructions;
  t.deepEqual(
    ins.map((i) => [i.line, i.keyword, i.args]),
    [
      [3, 'FROM', 'rack/stack'],
      [4, 'RUN', 'a   b   c'],
      [9, 'CMD', '["x"]'],
    ],
  );
  t.true(isAllowedBase('rack/stack:latest', []));
  t.false(isAllowedBase('rack/stack:b3', []));
  t.false(isAllowedBase('rack/other', ['debian']));
});

test('the Dockerfile parser reads directives, continuations and flags as Docker does (issue 27)', (t) => {
  const read = (text: string) => parseDockerfile(text).instructions.map((i) => [i.keyword, ...i.flags, i.args].join(' ').trim());
  // An unknown directive, a comment or a blank line ends the directives: the escape below is a comment.
  t.is(parseDockerfile('# foo=bar\n# escape=`\nFROM rack/stack\n').escape, '\\');
  t.is(parseDockerfile('\n# escape=`\nFROM rack/stack\n').escape, '\\');
  t.is(parseDockerfile('# note\n# escape=`\nFROM rack/stack\n').escape, '\\');
  t.is(parseDockerfile('  # SYNTAX = docker/dockerfile:1\n#Escape=`\nFROM rack/stack\n').escape, '`');
  t.deepEqual(read('# foo=bar\n# escape=`\nFROM rack/stack\nRUN true # `\nFROM rack/victim\n'), ['FROM rack/stack', 'RUN true # `', 'FROM rack/victim']);
  t.throws(() => parseDockerfile('# escape=`\n# escape=\\\nFROM x\n'), { message: /line 2: only one escape parser directive/ });
  t.throws(() => parseDockerfile('# check=skip=all\n# escape=`\nFROM x\n'), { message: /line 2: put the check parser directive last/ });
  // Continuation lines are joined with nothing between them; the escape may have spaces after it.
  t.deepEqual(read('FROM rack/stack\nADD http:/\\ \t\n/host/x /p\n'), ['FROM rack/stack', 'ADD http://host/x /p']);
  t.deepEqual(read('FROM rack/stack\r\nRUN a`\r\n  b\r\n'), ['FROM rack/stack', 'RUN a`', 'B']);
  t.deepEqual(read('\ufeffFROM rack/stack\n'), ['FROM rack/stack']);
  // Whitespace Go and JavaScript disagree on, and continuations Docker versions disagree on.
  t.throws(() => parseDockerfile('FROM rack/stack\nRUN true \\\u00a0\nFROM x\n'), { message: /line 2: unusual whitespace .*U\+00A0/ });
  t.throws(() => parseDockerfile('FROM rack/stack\nRUN a\rFROM x\n'), { message: /U\+000D/ });
  t.throws(() => parseDockerfile('FROM rack/stack\nRUN echo \\\\\nFROM x\n'), { message: /line 2: a line ending in/ });
  // Builder flags: quotes group, a backslash takes the next character, `--` ends the flags.
  t.deepEqual(builderFlags('--fr\\om=rack/victim /a /b'), { flags: ['--from=rack/victim'], rest: '/a /b' });
  t.deepEqual(builderFlags('--from="a b" --chown=1 x'), { flags: ['--from=a b', '--chown=1'], rest: 'x' });
  t.deepEqual(builderFlags('-- --from=x y'), { flags: [], rest: ' --from=x y' });
  t.deepEqual(builderFlags('--link'), { flags: ['--link'], rest: '' });
});

test('the Dockerfile policy refuses what Docker would read differently from its text (issue 27)', (t) => {
  refused(t, '# foo=bar\n# escape=`\nFROM rack/stack\nRUN true # `\nFROM rack/victim:b1\n', /^Dockerfile line 5: FROM rack\/victim:b1 is not allowed/);
  refused(t, 'FROM rack/stack\nADD http:/\\\n/127.0.0.1/x /p\n', /^Dockerfile line 2: ADD of a remote source \(http:\/\/127/);
  refused(t, 'FROM rack/stack\nADD "http://127.0.0.1/x" /p\n', /line 2: ADD of a remote source/);
  refused(t, 'FROM rack/stack\nADD h\\ttp\\:/\\/127.0.0.1/x /p\n', /line 2: ADD of a remote source/);
  refused(t, 'FROM rack/stack\nADD github.com/moby/moby /p\n', /line 2: ADD of a remote source/);
  refused(t, 'FROM rack/stack\nADD ["http://127.0.0.1/x", "/p"] x\n', /line 2: arguments starting with "\[" must be one JSON array/);
  refused(t, 'FROM rack/stack\nCOPY --fr\\om=rack/victim:b1 /a /b\n', /line 2: COPY --from=rack\/victim:b1 is not an earlier build stage/);
  t.notThrows(() => ok('FROM rack/stack\nCOPY --from="rack/stack" /a /b\n')); // Docker takes the quotes out too
  refused(t, 'FROM "rack/victim:b1"\n', /line 1: FROM "rack\/victim:b1": name the image plainly/);
  refused(t, 'FROM rack/st\\ack\n', /name the image plainly/);
  refused(t, 'FROM rack/stack\nRUN <<EOF\nFROM x\nEOF\n', /line 2: here-documents/);
  refused(t, 'FROM rack/stack\nONBUILD --x COPY a b\n', /line 2: ONBUILD takes no flags/);
  t.notThrows(() => ok('FROM rack/stack AS a\nFROM rack/stack\nCOPY --chown=1:1 --from=a /a /b\nADD --chown=1 ["a b", "/c"]\nCOPY [a-z]*.txt /d/\n'));
});

test('a Dockerfile build is held to what rack checked: the engine\'s steps and the image\'s parents', (t) => {
  const check = stepCheck(parseDockerfile('FROM rack/stack\nRUN true # `\nFROM rack/stack\n'));
  t.is(check(1, 3, 'FROM rack/stack'), undefined);
  t.is(check(2, 3, 'RUN true # `'), undefined);
  t.is(check(3, 3, 'FROM rack/stack'), undefined);
  t.regex(check(1, 4, 'FROM rack/stack') ?? '', /^Docker read the Dockerfile otherwise than rack's check \(step 1\/4: FROM rack\/stack\)/);
  t.regex(check(3, 3, 'RUN cat /x') ?? '', /step 3\/3/);
  const stack = { id: 'sha256:s', tags: ['rack/stack:latest'], labels: {} };
  const step = (labels: Record<string, string> = {}) => ({ id: `sha256:${Math.random()}`, tags: [], labels });
  const own = { id: 'sha256:own', tags: ['rack/evil:b2-x'], labels: { 'rack.app': 'evil' } };
  t.notThrows(() => checkAncestry([own, step(), step(), stack], new Set(['sha256:s']), 'evil'));
  t.notThrows(() => checkAncestry([own, step(), step()], new Set(['sha256:s']), 'evil')); // FROM scratch
  const victim = { id: 'sha256:v', tags: ['rack/victim:b1-x'], labels: { 'rack.app': 'victim' } };
  t.throws(() => checkAncestry([own, step({ 'rack.app': 'victim' }), victim, stack], new Set(['sha256:s']), 'evil'), {
    message: /^the build started from an image of app victim, which is not an allowed base/,
  });
  t.throws(() => checkAncestry([own, victim, stack], new Set(['sha256:s']), 'evil'), { message: /started from rack\/victim:b1-x/ });
});

test('buildpack fetches go to public addresses only, pinned to the address checked, without redirects', async (t) => {
  for (const a of ['127.0.0.1', '10.1.2.3', '172.20.0.1', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '::1', '::', 'fe80::1', 'fd00::1', '::ffff:127.0.0.1', 'not-an-ip']) {
    t.true(isInternalAddress(a), a);
  }
  for (const a of ['140.82.112.3', '8.8.8.8', '2606:4700::1111']) t.false(isInternalAddress(a), a);
  const failed = () => new RackError('build_failed', 'cannot fetch');
  for (const url of ['http://127.0.0.1:1/p.git', 'http://2130706433/p.git', 'http://0x7f.1/p.git', 'git://[::1]/p.git', 'https://169.254.169.254/x', 'http://localhost/x']) {
    await t.throwsAsync(pinFetch(url, [], failed), { message: 'cannot fetch' }, url);
  }
  t.deepEqual(await pinFetch('https://140.82.112.3/a/b.git', [], failed), { url: 'https://140.82.112.3/a/b.git', gitConfig: ['-c', 'http.followRedirects=false'] });
  const local = await pinFetch('git://localhost:9000/bp.git', ['localhost'], failed);
  t.regex(local.url, /^git:\/\/(127\.0\.0\.1|\[::1\]):9000\/bp\.git$/);
  const http = await pinFetch('http://LOCALHOST:81/bp.git', ['localhost'], failed);
  t.is(http.url, 'http://localhost:81/bp.git');
  t.regex(http.gitConfig.join(' '), /http\.curloptResolve=localhost:81:(127\.0\.0\.1|\[::1\])$/);
});

test('RACK_DOCKER_BASES and the build settings are parsed once and fail fast', (t) => {
  t.deepEqual(parseDockerBases(' debian:bookworm, node ,registry.local:5000/team/base:1 '), ['debian:bookworm', 'node', 'registry.local:5000/team/base:1']);
  t.deepEqual(parseDockerBases(''), []);
  t.throws(() => parseDockerBases('rack/victim:b1'), { message: /one of rack's own images/ });
  t.throws(() => parseDockerBases('Debian'), { message: /"Debian" is not an image reference/ });
  t.throws(() => parseDockerBases('a b'), { message: /not an image reference/ });
  const c = loadConfig({ RACK_BUILD_MEMORY: '512m', RACK_BUILD_CONCURRENCY: '3' }, '/');
  t.is(c.buildMemory, 512 * 1024 * 1024);
  t.is(c.buildConcurrency, 3);
  t.is(loadConfig({}, '/').buildMemory, 2 * 1024 ** 3);
  t.is(loadConfig({}, '/').buildPids, 4096);
  t.deepEqual(loadConfig({ RACK_BUILD_PIDS: '300', RACK_FETCH_ALLOW: ' Git.Example.com ,localhost' }, '/').fetchAllow, ['git.example.com', 'localhost']);
  t.throws(() => loadConfig({ RACK_BUILD_PIDS: '0' }, '/'), { message: /RACK_BUILD_PIDS must be a positive integer/ });
  t.true(loadConfig({}, '/').buildConcurrency >= 2);
  t.throws(() => loadConfig({ RACK_BUILD_MEMORY: '2 GB' }, '/'), { message: /RACK_BUILD_MEMORY must be a size/ });
  t.throws(() => loadConfig({ RACK_BUILD_MEMORY: '1m' }, '/'), { message: /RACK_BUILD_MEMORY/ });
  t.throws(() => loadConfig({ RACK_DOCKER_BASES: 'rack/x' }, '/'), { message: /RACK_DOCKER_BASES/ });
});

test('buildpack paths and file:// URLs are decoded and resolved before any check', (t) => {
  t.is(lexicalBuildpackPath('file:///home/r/buildpacks/%2e%2e/repos/victim.git'), '/home/r/repos/victim.git');
  t.is(lexicalBuildpackPath('file:///home/r/buildpacks/%2E%2E/%2e%2e/etc'), '/home/etc');
  t.is(lexicalBuildpackPath('file://localhost/home/r/buildpacks/a%20b'), '/home/r/buildpacks/a b');
  t.is(lexicalBuildpackPath('/home/r/buildpacks/../repos/x'), '/home/r/repos/x');
  t.is(lexicalBuildpackPath('FILE:///a/./b//c/'), '/a/b/c');
  t.throws(() => lexicalBuildpackPath('file://evil.example/x'), { message: /name no host/ });
  t.throws(() => lexicalBuildpackPath('file:///a%2fb'), { message: /not a valid file:\/\/ URL/ });
  t.throws(() => lexicalBuildpackPath('file:///a?x=1'), { message: /not a plain file:\/\/ URL/ });
  t.throws(() => lexicalBuildpackPath('relative/path'), { message: /must be absolute/ });
});

test('the canonical buildpack path follows symlinks and must stay under the root', async (t) => {
  const base = await mkdtemp(join(tmpdir(), 'rack-bp-'));
  try {
    const root = join(base, 'buildpacks');
    await mkdir(join(root, 'good'), { recursive: true });
    await mkdir(join(base, 'repos', 'victim.git'), { recursive: true });
    await symlink(join(base, 'repos', 'victim.git'), join(root, 'link'));
    await symlink(join(root, 'good'), join(root, 'alias'));
    t.is(await canonicalBuildpackPath(join(root, 'good'), root), join(root, 'good'));
    t.is(await canonicalBuildpackPath(`file://${root}/alias`, root), join(root, 'good'));
    for (const entry of [
      `file://${root}/%2e%2e/repos/victim.git`,
      `${root}/../repos/victim.git`,
      `${root}/link`,
      `file://${root}/link`,
      `file://${root}/link/%2e%2e/victim.git`,
      root,
      `${root}/missing`,
    ]) {
      await t.throwsAsync(canonicalBuildpackPath(entry, root), { message: /must be a directory under/ }, entry);
    }
  } finally {
    await rm(base, { recursive: true, force: true });
  }
});

test('a build log keeps 10 MB of output, then a marker, and still rack\'s own lines', (t) => {
  const log = new BuildLog(1000);
  const shown: string[] = [];
  for (let i = 0; i < 100; i++) if (log.output('x'.repeat(99), (m) => shown.push(m))) shown.push('line');
  log.note(' !     build failed');
  const text = log.text();
  t.true(log.truncated);
  t.is(text.split('\n').filter((l) => l.startsWith('x')).length, 10);
  t.true(text.endsWith(`${TRUNCATED}\n !     build failed`));
  t.deepEqual(shown.slice(-2), ['line', TRUNCATED]);
  // What is saved (page by page, no copy of the whole) is the same text.
  t.is(Buffer.concat(log.pages()).toString('utf8'), text);
  const big = new BuildLog(5 * 1024 * 1024);
  for (let i = 0; i < 30_000; i++) big.output(`${i} ${'y'.repeat(100)}`);
  t.true(big.pages().length > 1);
  t.is(Buffer.concat(big.pages()).toString('utf8'), big.text());
});

test('the line splitter caps a line without newline', (t) => {
  const lines: string[] = [];
  const s = lineSplitter((l) => lines.push(l), { maxLine: 10 });
  s.push('abc\n');
  for (let i = 0; i < 5; i++) s.push('y'.repeat(7));
  s.push('\n\nz');
  s.end();
  t.deepEqual(lines, ['abc', 'yyyyyyyyyy', 'yyyyyyyyyy', 'yyyyyyyyyy', 'yyyyy', '', 'z']);
});

test('the line splitter keeps a character split across chunks whole, and can refuse a line too long', (t) => {
  const lines: string[] = [];
  const s = lineSplitter((l) => lines.push(l));
  const bytes = Buffer.from('héllo wörld\r\nnext\n');
  for (const b of bytes) s.push(Buffer.from([b])); // one byte at a time
  t.deepEqual(lines, ['héllo wörld', 'next']);
  const refused: string[] = [];
  let tooLong = 0;
  const strict = lineSplitter((l) => refused.push(l), { maxLine: 8, onTooLong: () => tooLong++ });
  strict.push('ok\n0123456789');
  strict.push('more\n');
  strict.end();
  t.deepEqual(refused, []);
  t.is(tooLong, 1);
});

test('build slots: one build per app, and long builds give their slot to a waiting app', async (t) => {
  const slots = new BuildSlots(2, 50);
  const done: string[] = [];
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  const long = (name: string) => slots.run(name, async () => (await gate, done.push(name)));
  const a = long('a');
  const b = long('b');
  const a2 = slots.run('a', async () => done.push('a2')); // waits for a's first build
  const c = slots.run('c', async () => done.push('c'));
  await c;
  t.deepEqual(done, ['c']);
  open();
  await Promise.all([a, b, a2]);
  t.is(done.indexOf('a2') > done.indexOf('a'), true);
  await t.throwsAsync(slots.run('d', async () => Promise.reject(new Error('boom'))), { message: 'boom' });
});

test('app.json health checks are read by the build', (t) => {
  t.deepEqual(healthCheckFromAppJson('{"healthchecks":{"web":[{"path":"/up","timeout":5,"attempts":3}]}}'), { path: '/up', timeoutMs: 5000, attempts: 3 });
  t.is(healthCheckFromAppJson('not json'), undefined);
});
