import test from 'ava';
import { checkLinkTarget, quotePath, sourcePath } from '../daemon/build/tarball-source.js';
import { registryRefsOf } from '../daemon/runtime/registry-images.js';

// The pure parts of tarball builds and promotion, without Docker.

test('tarball paths: ./ and empty segments are dropped; absolute paths and .. are refused; .git is left out', (t) => {
  t.is(sourcePath('./app/server.js'), 'app/server.js');
  t.is(sourcePath('a//b/./c'), 'a/b/c');
  t.is(sourcePath('./'), undefined);
  t.is(sourcePath('.git/config'), undefined);
  t.is(sourcePath('sub/.GIT/HEAD'), undefined);
  t.throws(() => sourcePath('/etc/passwd'), { message: /absolute path/ });
  t.throws(() => sourcePath('a/../../b'), { message: /climbs out/ });
  t.throws(() => sourcePath('..'), { message: /climbs out/ });
  t.is(sourcePath('a..b/c..'), 'a..b/c..', 'dots inside a name are a name');
});

test('tarball symlinks may point anywhere inside the source, never out of it', (t) => {
  t.notThrows(() => checkLinkTarget('a/b/link', '../c'));
  t.notThrows(() => checkLinkTarget('link', '.'));
  t.throws(() => checkLinkTarget('a/link', '../../etc'), { message: /points out of the source/ });
  t.throws(() => checkLinkTarget('link', '..'), { message: /points out of the source/ });
  t.throws(() => checkLinkTarget('link', '/etc/passwd'), { message: /absolute path/ });
  t.throws(() => checkLinkTarget('a/link', 'b/../../../x'), { message: /points out of the source/ });
});

test("fast-import paths are quoted so that quotes, backslashes and line breaks stay one path", (t) => {
  t.is(quotePath('plain/file.js'), '"plain/file.js"');
  t.is(quotePath('we"ird\\name'), '"we\\"ird\\\\name"');
  t.is(quotePath('line\nbreak\ttab'), '"line\\012break\\011tab"');
  t.is(quotePath('é'), `"${Buffer.from('é').toString('latin1')}"`, 'UTF-8 bytes pass as they are');
});

test("forgetting one app's name for an image leaves another app's registry manifest of the same image", (t) => {
  const local = '127.0.0.1:5000';
  // The image staging built, promoted to prod: one image, a name and a manifest in each repository.
  const info = {
    RepoTags: ['rack/stage:b1-abc', 'rack/prod:pstage-v2-abc', `${local}/rack/stage:b1-abc`, `${local}/rack/prod:pstage-v2-abc`],
    RepoDigests: [`${local}/rack/stage@sha256:1111`, `${local}/rack/prod@sha256:1111`],
  };
  t.deepEqual(registryRefsOf('rack/stage:b1-abc', local, info), { tags: [`${local}/rack/stage:b1-abc`], digests: [`${local}/rack/stage@sha256:1111`] });
  t.deepEqual(registryRefsOf('rack/prod:pstage-v2-abc', local, info), { tags: [`${local}/rack/prod:pstage-v2-abc`], digests: [`${local}/rack/prod@sha256:1111`] });
  // rack/stage is not rack/stage-two's prefix.
  t.deepEqual(registryRefsOf('rack/stage:b1-abc', local, { RepoDigests: [`${local}/rack/stage-two@sha256:2222`] }).digests, []);
});
