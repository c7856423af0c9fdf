'use strict';
// rack static file server: installed by the `static` buildpack as /app/.rack-static/server.cjs and
// run as the web process (`node /app/.rack-static/server.cjs`). Node.js core modules only. It is
// .cjs because the app's package.json may say "type": "module" (every Vite app's does), which
// would make node read a .js beside it as an ES module.
//
// - serves the document root named in config.json next to this file (written by bin/compile:
//   public/ when it exists, else the app root; static.json can say otherwise) on $PORT
// - GET and HEAD only; a directory is answered with its index.html (a URL without the trailing
//   slash is redirected to it), `clean_urls` serves /about from about.html, anything else is 404
//   (with the configured error page, if any) unless a static.json route names a file for the
//   path (`"routes": {"/**": "index.html"}`: a single-page app's fallback)
// - static.json `headers` are added to the answers of the paths their patterns match
// - refuses path traversal: a `..` or `.` segment, raw or percent-encoded (%2e%2e), a NUL byte or
//   a backslash gets 400; after symlinks are resolved the file must still be inside the root
// - never serves dotfiles or dot-directories (so not .rack-static, .profile.d, .env, .git), nor
//   at the top of the app the build files Procfile, static.json and app.json, nor the repository's
//   README, LICENSE and the like unless static.json says "repo_files": true
// - Content-Type by extension, Content-Length, Last-Modified, ETag, 304 on a match
const fs = require('fs');
const http = require('http');
const path = require('path');

const CONFIG_FILE = path.join(__dirname, 'config.json');
const APP_DIR = path.dirname(__dirname);
const HIDDEN_AT_APP_ROOT = new Set(['Procfile', 'static.json', 'app.json']);
const REPO_FILE = /^(readme|license|licence|copying|notice|authors|changelog|contributing|security)([.-][^/]*)?$/i;

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.htm': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.webmanifest': 'application/manifest+json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.md': 'text/markdown; charset=utf-8',
  '.csv': 'text/csv; charset=utf-8',
  '.xml': 'application/xml; charset=utf-8',
  '.rss': 'application/rss+xml; charset=utf-8',
  '.atom': 'application/atom+xml; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.avif': 'image/avif',
  '.ico': 'image/x-icon',
  '.bmp': 'image/bmp',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.ttf': 'font/ttf',
  '.otf': 'font/otf',
  '.eot': 'application/vnd.ms-fontobject',
  '.wasm': 'application/wasm',
  '.pdf': 'application/pdf',
  '.zip': 'application/zip',
  '.gz': 'application/gzip',
  '.mp4': 'video/mp4',
  '.webm': 'video/webm',
  '.mp3': 'audio/mpeg',
  '.ogg': 'audio/ogg',
  '.wav': 'audio/wav',
};

function loadConfig() {
  let config = {};
  try {
    config = JSON.parse(fs.readFileSync(CONFIG_FILE, 'utf8')) || {};
  } catch (err) {
    if (err.code !== 'ENOENT') throw err;
  }
  const root = fs.realpathSync(path.resolve(APP_DIR, config.root || (fs.existsSync(path.join(APP_DIR, 'public')) ? 'public' : '.')));
  const errorPage = config.errorPage ? path.resolve(root, config.errorPage) : null;
  // Longest pattern first: the most specific route wins; headers apply longest last (they override).
  const byLength = (obj) => Object.entries(obj || {}).sort((a, b) => b[0].length - a[0].length);
  const routes = byLength(config.routes).map(([from, to]) => [from, path.resolve(root, to)]);
  const headers = byLength(config.headers).reverse();
  return { root, appRoot: root === fs.realpathSync(APP_DIR), cleanUrls: !!config.cleanUrls, errorPage, repoFiles: !!config.repoFiles, routes, headers };
}

// static.json patterns: an exact path, PREFIX/* (one more segment) or PREFIX/** (any depth).
function matches(pattern, pathname) {
  if (pattern.endsWith('/**')) {
    const prefix = pattern.slice(0, -3);
    return prefix === '' || pathname === prefix || pathname.startsWith(prefix + '/');
  }
  if (pattern.endsWith('/*')) {
    const prefix = pattern.slice(0, -2);
    const rest = pathname.startsWith(prefix + '/') ? pathname.slice(prefix.length + 1) : '';
    return rest !== '' && !rest.includes('/');
  }
  return pathname === pattern || pathname === pattern + '/';
}

const config = loadConfig();

class HttpError extends Error {
  constructor(status) {
    super(http.STATUS_CODES[status]);
    this.status = status;
  }
}

// The raw path of a request target: origin-form (`/a/b?q`) or absolute-form (`http://host/a/b`,
// taken as it is written: no URL normalisation that would hide a `..`); anything else is a 400.
function pathOf(url) {
  let target = url;
  if (!target.startsWith('/')) {
    const m = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*(.*)$/.exec(target);
    if (!m) throw new HttpError(400);
    target = m[1] || '/';
    if (!target.startsWith('/')) target = '/' + target;
  }
  return target.split('?')[0].split('#')[0];
}

// The request path as a list of decoded segments, or an HttpError. Empty segments (`//`) go.
function segmentsOf(url) {
  const pathname = pathOf(url);
  const segments = [];
  for (const raw of pathname.split('/')) {
    if (raw === '') continue;
    let segment;
    try {
      segment = decodeURIComponent(raw);
    } catch {
      throw new HttpError(400);
    }
    // `..`/`.` raw or encoded, an encoded slash that would hide one, NUL, backslash: refused
    if (segment.includes('\0') || segment.includes('\\')) throw new HttpError(400);
    for (const part of segment.split('/')) {
      if (part === '..' || part === '.') throw new HttpError(400);
      if (part === '') continue;
      segments.push(part);
    }
  }
  return segments;
}

// Whether the path (relative to the root, resolved) may be served.
function allowed(relative, isTopLevelFile) {
  if (relative === '') return true;
  if (relative.startsWith('..') || path.isAbsolute(relative)) return false;
  const parts = relative.split(path.sep);
  if (parts.some((p) => p.startsWith('.'))) return false;
  if (config.appRoot && parts.length === 1 && isTopLevelFile && HIDDEN_AT_APP_ROOT.has(parts[0])) return false;
  if (config.appRoot && parts.length === 1 && isTopLevelFile && !config.repoFiles && REPO_FILE.test(parts[0])) return false;
  return true;
}

// The real file behind `segments`: { file, stat } or { redirect } or an HttpError(404).
async function resolve(segments, trailingSlash) {
  if (segments.some((s) => s.startsWith('.'))) throw new HttpError(404);
  const candidate = path.join(config.root, ...segments);
  const real = await realFile(candidate);
  if (real) {
    if (real.stat.isDirectory()) {
      if (!trailingSlash && segments.length > 0) {
        return { redirect: '/' + segments.map(encodeURIComponent).join('/') + '/' };
      }
      const index = await realFile(path.join(real.file, 'index.html'));
      if (index && index.stat.isFile()) return index;
      throw new HttpError(404);
    }
    if (real.stat.isFile() && !trailingSlash) return real;
    throw new HttpError(404);
  }
  if (config.cleanUrls && segments.length > 0 && !trailingSlash && !segments[segments.length - 1].endsWith('.html')) {
    const html = await realFile(candidate + '.html');
    if (html && html.stat.isFile()) return html;
  }
  throw new HttpError(404);
}

// Resolves symlinks and checks the result stays inside the root; null when missing or refused.
async function realFile(file) {
  let real;
  try {
    real = await fs.promises.realpath(file);
  } catch {
    return null;
  }
  const relative = path.relative(config.root, real);
  let stat;
  try {
    stat = await fs.promises.stat(real);
  } catch {
    return null;
  }
  if (!allowed(relative, stat.isFile())) return null;
  return { file: real, stat };
}

function typeOf(file) {
  return TYPES[path.extname(file).toLowerCase()] || 'application/octet-stream';
}

// The static.json headers for a request's path, over the server's own.
function withConfigured(req, headers) {
  if (config.headers.length === 0) return headers;
  let pathname;
  try {
    pathname = '/' + segmentsOf(req.url || '/').join('/');
  } catch {
    return headers;
  }
  for (const [pattern, set] of config.headers) if (matches(pattern, pathname)) Object.assign(headers, set);
  return headers;
}

function send(req, res, status, found) {
  const { file, stat } = found;
  const etag = `W/"${stat.size.toString(16)}-${Math.floor(stat.mtimeMs).toString(16)}"`;
  const headers = withConfigured(req, {
    'Content-Type': typeOf(file),
    'Last-Modified': stat.mtime.toUTCString(),
    ETag: etag,
    'X-Content-Type-Options': 'nosniff',
  });
  if (status === 200) {
    const inm = req.headers['if-none-match'];
    const ims = Date.parse(req.headers['if-modified-since'] || '');
    const fresh = inm ? inm.split(/\s*,\s*/).includes(etag) || inm.trim() === '*' : !Number.isNaN(ims) && Math.floor(stat.mtimeMs / 1000) <= Math.floor(ims / 1000);
    if (fresh) {
      res.writeHead(304, headers);
      return res.end();
    }
  }
  headers['Content-Length'] = stat.size;
  res.writeHead(status, headers);
  if (req.method === 'HEAD') return res.end();
  const stream = fs.createReadStream(file);
  stream.on('error', () => res.destroy());
  stream.pipe(res);
}

async function sendError(req, res, status) {
  if (status === 404 && config.errorPage) {
    const page = await realFile(config.errorPage).catch(() => null);
    if (page && page.stat.isFile()) return send(req, res, 404, page);
  }
  const body = `${http.STATUS_CODES[status]}\n`;
  const headers = { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body), 'X-Content-Type-Options': 'nosniff' };
  if (status === 405) headers.Allow = 'GET, HEAD';
  res.writeHead(status, headers);
  res.end(req.method === 'HEAD' ? undefined : body);
}

async function handle(req, res) {
  if (req.method !== 'GET' && req.method !== 'HEAD') return sendError(req, res, 405);
  const url = req.url || '/';
  const segments = segmentsOf(url);
  const result = await resolve(segments, pathOf(url).endsWith('/')).catch(async (err) => {
    // A path with no file of its own may be a route (a single-page app's client-side URL).
    if (!(err instanceof HttpError) || err.status !== 404) throw err;
    const pathname = '/' + segments.join('/');
    const route = config.routes.find(([pattern]) => matches(pattern, pathname));
    const target = route ? await realFile(route[1]) : null;
    if (target && target.stat.isFile()) return target;
    throw err;
  });
  if (result.redirect) {
    const query = url.includes('?') ? url.slice(url.indexOf('?')).split('#')[0] : '';
    res.writeHead(301, { Location: result.redirect + query, 'Content-Length': 0 });
    return res.end();
  }
  return send(req, res, 200, result);
}

const quiet = !!process.env.RACK_STATIC_QUIET;
const server = http.createServer((req, res) => {
  if (!quiet) res.on('finish', () => console.log(`${req.method} ${JSON.stringify(req.url)} ${res.statusCode}`));
  handle(req, res)
    .catch((err) => sendError(req, res, err instanceof HttpError ? err.status : 500))
    .catch(() => res.destroy());
});
server.keepAliveTimeout = 65000;

const port = Number(process.env.PORT || 5000);
server.listen(port, () => console.log(`static: serving ${config.root} on port ${port}`));

function stop() {
  server.close(() => process.exit(0));
  server.closeIdleConnections();
  setTimeout(() => process.exit(0), 10000).unref();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
