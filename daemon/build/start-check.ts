/**
 * A Node.js app that the nodejs buildpack will build but nothing will start: no Procfile, no
 * `start` script and no server.js. Said before the install (which can take minutes) rather than
 * after it, as the push's one failure line; undefined when something will start, or when another
 * buildpack has the last word (it gives the default process types).
 */
export function nothingToStart(input: {
  packageJson: string | undefined;
  hasServerJs: boolean;
  hasProcfileTypes: boolean;
  /** The buildpacks asked for (.buildpacks or BUILDPACK_URL); empty: detection. */
  buildpacks: readonly string[];
}): string | undefined {
  if (input.hasProcfileTypes || input.hasServerJs || input.packageJson === undefined) return undefined;
  const last = input.buildpacks.at(-1);
  if (last !== undefined && last !== 'nodejs' && last !== 'heroku/nodejs') return undefined;
  let pkg: unknown;
  try {
    pkg = JSON.parse(input.packageJson);
  } catch {
    return undefined; // the buildpack says what is wrong with it
  }
  if (typeof pkg !== 'object' || pkg === null) return undefined;
  const { scripts, main, workspaces } = pkg as { scripts?: unknown; main?: unknown; workspaces?: unknown };
  const start = typeof scripts === 'object' && scripts !== null ? (scripts as Record<string, unknown>)['start'] : undefined;
  if (typeof start === 'string' && start.trim() !== '') return undefined;
  const names = dependencyNames(pkg as Record<string, unknown>);
  const framework = FRAMEWORK_STARTS.find(([name]) => names.has(name));
  if (framework !== undefined) {
    return `nothing would start this app: package.json has no "start" script and there is no server.js or Procfile; ${framework[1]}`;
  }
  // A workspace root's own main is rarely what serves: one of its packages is (npm init -y gives
  // every root a main of index.js that does not exist).
  if (Array.isArray(workspaces) || (typeof workspaces === 'object' && workspaces !== null)) {
    return 'nothing would start this app: the workspace root\'s package.json has no "start" script and there is no server.js or Procfile; add one that starts the package that serves, e.g. "start": "npm start -w PACKAGE" (or a Procfile line "web: npm start -w PACKAGE")';
  }
  const entry = typeof main === 'string' && /^[\w./-]{1,100}$/.test(main) ? main : 'index.js';
  return `nothing would start this app: package.json has no "start" script and there is no server.js or Procfile; add "start": "node ${entry}" to its scripts (or a Procfile line "web: node ${entry}")`;
}

// How each server framework's own docs start its build on a Node.js host.
const FRAMEWORK_STARTS: readonly (readonly [string, string])[] = [
  ['@sveltejs/kit', 'SvelteKit builds a Node.js server with @sveltejs/adapter-node in svelte.config.js (adapter-auto builds for hosted platforms only); then add "start": "node build"'],
  ['nuxt', 'add "start": "node .output/server/index.mjs" (Nuxt\'s built server)'],
  ['@react-router/dev', 'add "start": "react-router-serve ./build/server/index.js" (with @react-router/serve in dependencies)'],
  ['@remix-run/dev', 'add "start": "remix-serve ./build/index.js" (with @remix-run/serve in dependencies)'],
  ['next', 'add "start": "next start"'],
  ['@astrojs/node', 'add "start": "node ./dist/server/entry.mjs" (Astro\'s standalone server)'],
];

function dependencyNames(pkg: Record<string, unknown>): Set<string> {
  const names = new Set<string>();
  for (const field of ['dependencies', 'devDependencies']) {
    const deps = pkg[field];
    if (typeof deps === 'object' && deps !== null) for (const name of Object.keys(deps)) names.add(name);
  }
  return names;
}

// Bundlers whose `build` writes a whole site (index.html and its assets) to dist/ or build/.
const SITE_BUNDLERS = ['vite', 'react-scripts', '@vue/cli-service', 'parcel', 'astro'];
// Frameworks that build a server (or need an adapter to say where it runs): their output is not a
// site to serve as files, even when vite builds it.
const SERVER_FRAMEWORKS = [
  '@sveltejs/kit', 'next', 'nuxt', '@remix-run/dev', '@react-router/dev', '@astrojs/node',
  '@solidjs/start', '@analogjs/platform', 'vike', '@tanstack/react-start', '@builder.io/qwik-city',
];

/**
 * A single-page app as its scaffolder made it (Vite, Create React App, Vue CLI, Parcel, Astro):
 * nothing would start it, but its `build` script writes a site that the static buildpack can
 * serve. On Heroku such an app builds and then crashes at `npm start`; rack builds it with nodejs
 * then static, as the `.buildpacks` a user would add says. Returns the bundler that builds it, or
 * undefined (a server framework, no build script, or package.json unreadable).
 */
export function singlePageApp(packageJson: string | undefined): string | undefined {
  if (packageJson === undefined) return undefined;
  let pkg: unknown;
  try {
    pkg = JSON.parse(packageJson);
  } catch {
    return undefined;
  }
  if (typeof pkg !== 'object' || pkg === null) return undefined;
  const record = pkg as Record<string, unknown>;
  const scripts = record['scripts'];
  const build = typeof scripts === 'object' && scripts !== null ? (scripts as Record<string, unknown>)['build'] : undefined;
  if (typeof build !== 'string' || build.trim() === '') return undefined;
  const names = dependencyNames(record);
  if (SERVER_FRAMEWORKS.some((name) => names.has(name))) return undefined;
  return SITE_BUNDLERS.find((name) => names.has(name));
}
