# Sourced by bin/compile. Puts the Node.js that package.json's engines.node asks for on PATH, and
# an npm that runs on it, as Heroku does: the stack's own node when it satisfies the range (no
# download), else the newest matching release from the npm registry's `node-linux-<arch>` packages
# (official binaries, reachable wherever npm is), cached per version in CACHE_DIR.
#
# Sets: NODE_BIN_DIR (empty when the stack's node is used), and shadows `npm` with a function
# that runs the chosen npm on the chosen node, so native modules build for the node that runs them.

STACK_NODE="$(command -v node)"
# Where the stack's npm lives, read off node's own prefix: `npm root -g` would start npm (0.1 s).
NPM_ROOT="$(dirname "$(dirname "$(readlink -f "$STACK_NODE")")")/lib/node_modules"
SEMVER_JS="$NPM_ROOT/npm/node_modules/semver"
NPM_CLI="$NPM_ROOT/npm/bin/npm-cli.js"
NODE_BIN_DIR=""
# The oldest node whose npm (npm 8) rack can install: npm 8 declares node ^12.13.
OLDEST_NODE=12.13.0
# Registry calls give up rather than retry for minutes (a user waits on them).
REGISTRY_FLAGS=(--fetch-timeout=60000 --fetch-retries=1 --silent)

# semver RANGE_OR_VERSION...: node -e over npm's own semver module.
semver_eval() {
  "$STACK_NODE" -e "const semver = require(process.argv[1]); $1" "$SEMVER_JS" "${@:2}"
}

# The stack's npm on the stack's node, whatever node is first on PATH by then.
stack_npm() {
  "$STACK_NODE" "$NPM_ROOT/npm/bin/npm-cli.js" "$@"
}

# fetch_package SPEC DEST: the registry's tarball of SPEC unpacked into DEST.
fetch_package() {
  local tmp
  tmp="$(mktemp -d)"
  if ! (cd "$tmp" && stack_npm pack "$1" "${REGISTRY_FLAGS[@]}" >/dev/null 2>&1); then
    rm -rf "$tmp"
    return 1
  fi
  rm -rf "$2" && mkdir -p "$2"
  tar xzf "$tmp"/*.tgz -C "$2" --strip-components=1
  rm -rf "$tmp"
}

# use_node_for RANGE: called with engines.node; exits through `error` when it cannot be met.
use_node_for() {
  local range="$1" stack_version arch package versions version cached
  stack_version="$(node --version)"
  if ! semver_eval 'process.exit(semver.validRange(process.argv[2]) ? 0 : 1)' "$range"; then
    error "engines.node in package.json is not a version range: $range"
  fi
  if semver_eval 'process.exit(semver.satisfies(process.argv[2], process.argv[3]) ? 0 : 1)' "$stack_version" "$range"; then
    echo "       engines.node \"$range\": the stack's node $stack_version satisfies it"
    return 0
  fi
  case "$(uname -m)" in
    x86_64) arch=x64 ;;
    aarch64) arch=arm64 ;;
    *) error "no Node.js binaries for $(uname -m) on the registry; remove engines.node to use the stack's $stack_version" ;;
  esac
  package="node-linux-$arch"
  versions="$(stack_npm view "$package@$range" version --json "${REGISTRY_FLAGS[@]}" 2>/dev/null)" ||
    error "could not list Node.js versions from the npm registry ($package@$range); is it reachable from builds?"
  version="$(semver_eval '
    const v = JSON.parse(process.argv[2] || "[]");
    process.stdout.write(semver.maxSatisfying(Array.isArray(v) ? v : [v], process.argv[3]) || "");
  ' "$versions" "$range")"
  [[ -n "$version" ]] || error "no Node.js release matches engines.node \"$range\""
  # Older releases are packaged differently and no npm rack can install runs on them (npm 8,
  # the oldest it tries, needs 12.13): say so before a download that could not work.
  semver_eval 'process.exit(semver.gte(process.argv[2], process.argv[3]) ? 0 : 1)' "$version" "$OLDEST_NODE" ||
    error "engines.node \"$range\" asks for node v$version; rack runs Node.js $OLDEST_NODE and newer (the stack's is $stack_version): ask for \">=$OLDEST_NODE\" or a newer major"
  cached="$CACHE_DIR/node-runtimes/$version"
  if [[ -x "$cached/bin/node" ]]; then
    echo "       engines.node \"$range\": node v$version (from the build cache)"
  else
    echo "       engines.node \"$range\": downloading node v$version ($package from the npm registry)"
    fetch_package "$package@$version" "$cached.tmp" || error "could not download $package@$version from the npm registry"
    [[ -x "$cached.tmp/bin/node" ]] || error "$package@$version has no bin/node"
    rm -rf "$cached" && mv "$cached.tmp" "$cached"
  fi
  mkdir -p "$BUILD_DIR/.heroku/node/bin"
  cp "$cached/bin/node" "$BUILD_DIR/.heroku/node/bin/node"
  # Recent Node.js releases (v26 here) link libatomic, which the build stack has and the run stack
  # does not: there such a node fails at start ("libatomic.so.1: cannot open shared object file"). The
  # library goes into the app beside it; .profile.d puts it on LD_LIBRARY_PATH at run time.
  local atomic
  atomic="$(ldd "$cached/bin/node" 2>/dev/null | sed -n 's|^[[:space:]]*libatomic\.so\.1 => \(/[^ ]*\).*|\1|p' | head -n 1)"
  if [[ -n "$atomic" ]]; then
    mkdir -p "$BUILD_DIR/.heroku/node/lib"
    cp -L "$atomic" "$BUILD_DIR/.heroku/node/lib/libatomic.so.1"
  fi
  NODE_BIN_DIR="$BUILD_DIR/.heroku/node/bin"
  export PATH="$NODE_BIN_DIR:$PATH"
  use_npm_for "v$version"
}

# use_npm_for NODE_VERSION: the stack's npm when it supports that node, else the newest npm major
# that does (npm 11 needs node 20.17+; 10 runs on 18; 9 and 8 on 14 and 16).
use_npm_for() {
  local node_version="$1" major dir
  if semver_eval 'process.exit(semver.satisfies(process.argv[2], require(process.argv[3]).engines.node) ? 0 : 1)' \
    "$node_version" "$NPM_ROOT/npm/package.json"; then
    return 0
  fi
  for major in 10 9 8; do
    dir="$CACHE_DIR/npm-cli/$major"
    if [[ ! -f "$dir/package.json" ]]; then
      fetch_package "npm@$major" "$dir" || error "could not download npm@$major from the npm registry"
    fi
    if semver_eval 'process.exit(semver.satisfies(process.argv[2], require(process.argv[3]).engines.node) ? 0 : 1)' \
      "$node_version" "$dir/package.json"; then
      NPM_CLI="$dir/bin/npm-cli.js"
      echo "       npm $("$STACK_NODE" -p 'require(process.argv[1]).version' "$dir/package.json") (the stack's npm does not run on node $node_version)"
      return 0
    fi
  done
  error "no npm runs on node $node_version; ask for a newer node in engines.node"
}

# From here on `npm` is the chosen npm on the chosen node (the first `node` on PATH).
npm() {
  node "$NPM_CLI" "$@"
}
