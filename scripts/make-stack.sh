#!/usr/bin/env bash
# Builds the two local stack images, as Heroku has: the build image (default rack/stack:latest)
# that build containers and Dockerfile builds start from, and the smaller run image
# (rack/stack-run:latest) that an app's built /app is copied onto. No registry can be pulled from,
# so both are made from scratch, in one root:
#
#   1. debootstrap --variant=minbase bookworm into a temp dir, from the Debian mirror apt uses here
#   2. apt-get install (no recommends) what apps need at run time: bash coreutils tar gzip
#      ca-certificates python3
#   3. Node.js + npm, one of (RACK_STACK_NODE):
#        host   - copy this machine's node binary and its npm (+ corepack) into /usr/local
#                 (the host is Debian bookworm too, so its glibc/libstdc++ match)
#        debian - Debian's nodejs + npm packages (node 18, npm 9; ~360 extra packages, ~270 MB)
#        auto   - host when the copied node runs inside the new root, else debian (default)
#   4. clean apt lists/caches, docs and man pages; create /app; import as the run image
#   5. apt-get install what classic buildpacks expect at build time (git curl jq xz unzip file,
#      build-essential, python3-venv/-dev and the usual -dev libraries); import as the build image
#   Each import: tar | docker import with ENV PATH/HOME/LANG/NODE_EXTRA_CA_CERTS/PIP_CERT, WORKDIR /app,
#   LABEL rack.managed=true
#
# Usage: scripts/make-stack.sh [IMAGE]     (as root, unattended; IMAGE defaults to rack/stack)
# Env:   RACK_STACK_NODE=auto|host|debian, RACK_DEBIAN_MIRROR=URL (overrides the apt mirror).
set -euo pipefail

IMAGE="${1:-rack/stack}"
[[ "${IMAGE##*/}" == *:* ]] || IMAGE="$IMAGE:latest"
NODE_MODE="${RACK_STACK_NODE:-auto}"
SUITE=bookworm
RUN_IMAGE="${IMAGE%:*}-run:${IMAGE##*:}"
PACKAGES=(bash coreutils tar gzip ca-certificates python3)
BUILD_PACKAGES=(git curl jq xz-utils unzip file build-essential pkg-config python3-venv python3-dev
  libssl-dev zlib1g-dev libffi-dev libyaml-dev libreadline-dev libsqlite3-dev)

START=$SECONDS
step() { echo "-----> $* ($((SECONDS - START))s)"; }
fail() { echo " !     $*" >&2; exit 1; }

case "$NODE_MODE" in auto|host|debian) ;; *) fail "RACK_STACK_NODE must be auto, host or debian" ;; esac
[[ $(id -u) -eq 0 ]] || fail "make-stack.sh must run as root (debootstrap, chroot)"
for tool in debootstrap docker tar chroot; do
  command -v "$tool" >/dev/null || fail "$tool is not installed"
done
docker info >/dev/null 2>&1 || fail "cannot reach the Docker engine"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/rack-stack.XXXXXX")"
ROOT="$WORK/root"
cleanup() { rm -rf --one-file-system "$WORK"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the Debian mirror apt uses on this machine ------------------------------------------
# Prints "URI SUITE" pairs from the deb822 file or the one-line sources.list.
apt_sources() {
  local f=/etc/apt/sources.list.d/debian.sources
  if [[ -r $f ]]; then
    awk 'BEGIN { RS = ""; FS = "\n" }
      { uris = ""; suites = ""; deb = 0
        for (i = 1; i <= NF; i++) {
          if ($i ~ /^Types:.*deb( |$)/) deb = 1
          if ($i ~ /^URIs:/)   { uris = $i;   sub(/^URIs:[ \t]*/, "", uris) }
          if ($i ~ /^Suites:/) { suites = $i; sub(/^Suites:[ \t]*/, "", suites) }
        }
        if (deb && uris != "") {
          nu = split(uris, u, /[ \t]+/); ns = split(suites, s, /[ \t]+/)
          for (a = 1; a <= nu; a++) for (b = 1; b <= ns; b++) print u[a], s[b]
        } }' "$f"
  fi
  if [[ -r /etc/apt/sources.list ]]; then
    sed -e 's/\[[^]]*\]//' /etc/apt/sources.list | awk '$1 == "deb" { print $2, $3 }'
  fi
}
SOURCES="$(apt_sources || true)"
MIRROR="${RACK_DEBIAN_MIRROR:-$(awk -v s="$SUITE" '$2 == s { print $1; exit }' <<<"$SOURCES")}"
[[ -n "$MIRROR" ]] || fail "no Debian $SUITE mirror in this machine's apt sources; set RACK_DEBIAN_MIRROR=URL"
SECURITY="$(awk -v s="$SUITE-security" '$2 == s { print $1; exit }' <<<"$SOURCES")"

# Proxy variables (if any) go to debootstrap (inherited) and to apt inside the chroot.
PROXY_ENV=()
for v in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY; do
  if [[ -n "${!v:-}" ]]; then PROXY_ENV+=("$v=${!v}"); fi
done
in_root() {
  chroot "$ROOT" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root LC_ALL=C DEBIAN_FRONTEND=noninteractive "${PROXY_ENV[@]}" "$@"
}
APT_OPTS=(-y -q -o Dpkg::Use-Pty=0 -o APT::Install-Recommends=false -o APT::Install-Suggests=false)
quietly() { # run "$@" with output to a log; show the log's tail on failure
  local log="$WORK/step.log"
  if ! "$@" >"$log" 2>&1; then tail -n 40 "$log" >&2; fail "failed: $*"; fi
}

# --- 1. debootstrap --------------------------------------------------------------------------
step "Bootstrapping Debian $SUITE (minbase) from $MIRROR"
quietly debootstrap --variant=minbase "$SUITE" "$ROOT" "$MIRROR"

{
  echo "deb $MIRROR $SUITE main"
  echo "deb $MIRROR $SUITE-updates main"
  if [[ -n "$SECURITY" ]]; then echo "deb $SECURITY $SUITE-security main"; fi
} >"$ROOT/etc/apt/sources.list"
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
# No daemons start inside the chroot; no docs or man pages are unpacked (now or later).
printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"
chmod 755 "$ROOT/usr/sbin/policy-rc.d"
cat >"$ROOT/etc/dpkg/dpkg.cfg.d/rack-nodoc" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
EOF
echo 'APT::Install-Recommends "false"; APT::Install-Suggests "false";' >"$ROOT/etc/apt/apt.conf.d/90rack-norecommends"

# --- 2. packages -----------------------------------------------------------------------------
step "Installing ${PACKAGES[*]}"
quietly in_root apt-get update -q
quietly in_root apt-get install "${APT_OPTS[@]}" "${PACKAGES[@]}"

# --- 3. Node.js ------------------------------------------------------------------------------
install_host_node() {
  local node prefix npm_dir
  node="$(command -v node 2>/dev/null)" || return 1
  node="$(readlink -f "$node")"
  prefix="$(dirname "$(dirname "$node")")"
  npm_dir="$prefix/lib/node_modules/npm"
  [[ -x "$node" && -f "$npm_dir/package.json" ]] || return 1
  mkdir -p "$ROOT/usr/local/bin" "$ROOT/usr/local/lib/node_modules"
  cp "$node" "$ROOT/usr/local/bin/node"
  cp -a "$npm_dir" "$ROOT/usr/local/lib/node_modules/npm"
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$ROOT/usr/local/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$ROOT/usr/local/bin/npx"
  if [[ -f "$prefix/lib/node_modules/corepack/package.json" ]]; then
    cp -a "$prefix/lib/node_modules/corepack" "$ROOT/usr/local/lib/node_modules/corepack"
    ln -sf ../lib/node_modules/corepack/dist/corepack.js "$ROOT/usr/local/bin/corepack"
  fi
  # Proof that the copy runs against the new root's libraries.
  in_root node -e 'require("crypto").randomBytes(1)' >/dev/null 2>&1 && in_root npm --version >/dev/null 2>&1
}
remove_host_node() {
  rm -rf "$ROOT/usr/local/bin/node" "$ROOT/usr/local/bin/npm" "$ROOT/usr/local/bin/npx" \
    "$ROOT/usr/local/bin/corepack" "$ROOT/usr/local/lib/node_modules"
}

node_source=""
if [[ "$NODE_MODE" != debian ]]; then
  step "Copying this machine's Node.js and npm into /usr/local"
  if install_host_node; then
    node_source=host
  else
    remove_host_node
    [[ "$NODE_MODE" == host ]] && fail "the host's node/npm do not run inside the stack"
    echo "       the host's node/npm are missing or do not run there; using Debian's packages"
  fi
fi
if [[ -z "$node_source" ]]; then
  step "Installing Debian's nodejs and npm"
  quietly in_root apt-get install "${APT_OPTS[@]}" nodejs npm
  node_source=debian
fi
echo "       node $(in_root node --version), npm $(in_root npm --version) ($node_source)"
echo "       $(in_root python3 --version)"

clean_root() {
  in_root apt-get clean
  rm -rf "$ROOT"/var/lib/apt/lists/* "$ROOT"/var/cache/apt/*.bin "$ROOT"/var/cache/debconf/*-old \
    "$ROOT"/var/log/* "$ROOT"/tmp/* "$ROOT"/var/tmp/* "$ROOT"/root/.npm \
    "$ROOT"/usr/share/man/* "$ROOT"/usr/share/info/*
  find "$ROOT/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  find "$ROOT/usr/share/doc" -mindepth 1 -type d -empty -delete
  # Dockerfile builds FROM the stack (and apps) trust what this host trusts, an intercepting
  # proxy's CA included: `docker build` cannot mount the host's bundle as buildpack builds get it.
  if [[ -f /etc/ssl/certs/ca-certificates.crt ]]; then
    cp /etc/ssl/certs/ca-certificates.crt "$ROOT/etc/ssl/certs/ca-certificates.crt"
  fi
  mkdir -p "$ROOT/app"
  rm -f "$ROOT/usr/sbin/policy-rc.d"
  : >"$ROOT/etc/resolv.conf" # Docker provides its own
}

# node and pip carry CA lists of their own: pointed at the system's, a Dockerfile's `RUN npm install`
# trusts what buildpack builds trust (an intercepting proxy's CA too; see clean_root).
CA_FILE=/etc/ssl/certs/ca-certificates.crt

# import_root IMAGE: the root as it is now, as IMAGE; the previous IMAGE goes if nothing uses it.
import_root() {
  local image="$1" old_id new_id size
  step "Importing $(du -sh "$ROOT" | cut -f1) as $image"
  old_id="$(docker image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)"
  tar --numeric-owner -C "$ROOT" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV HOME=/app' \
    --change 'ENV LANG=C.UTF-8' \
    --change "ENV NODE_EXTRA_CA_CERTS=$CA_FILE" \
    --change "ENV PIP_CERT=$CA_FILE" \
    --change 'WORKDIR /app' \
    --change 'LABEL rack.managed=true' \
    - "$image" >/dev/null
  new_id="$(docker image inspect --format '{{.Id}}' "$image")"
  if [[ -n "$old_id" && "$old_id" != "$new_id" ]]; then
    # App images built on the previous one keep it; otherwise it goes.
    docker image rm "$old_id" >/dev/null 2>&1 || true
  fi
  size="$(docker image inspect --format '{{.Size}}' "$image")"
  step "Done: $image ${new_id:7:12}, $((size / 1000000)) MB"
}

# --- 4. the run image ------------------------------------------------------------------------
step "Cleaning up"
clean_root
import_root "$RUN_IMAGE"

# --- 5. the build image ----------------------------------------------------------------------
step "Installing build tools: ${BUILD_PACKAGES[*]}"
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"
chmod 755 "$ROOT/usr/sbin/policy-rc.d"
quietly in_root apt-get update -q
quietly in_root apt-get install "${APT_OPTS[@]}" "${BUILD_PACKAGES[@]}"
# Native npm modules build against node's headers; node-gyp would download them, which a build
# cannot. The host's node came with its headers (Debian's nodejs keeps them in /usr/include/node).
if [[ "$node_source" == host ]]; then
  host_prefix="$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")"
  if [[ -f "$host_prefix/include/node/node.h" ]]; then
    mkdir -p "$ROOT/usr/local/include"
    cp -a "$host_prefix/include/node" "$ROOT/usr/local/include/node"
    echo "       node's headers for native modules in /usr/local/include/node"
  fi
fi
echo "       $(in_root git --version), $(in_root gcc --version | head -n 1), $(in_root jq --version)"
clean_root
import_root "$IMAGE"
