#!/usr/bin/env bash
# Everything rack needs on a fresh Debian machine (run as root): git, ssh and curl clients, Docker from
# Debian's docker.io (started in the background when no engine answers), debootstrap for the stack
# image, Chromium for the Console's browser tests, Pebble (a real ACME server) for the HTTPS tests,
# nginx, wrk and h2load for the router benchmark, the npm dependencies and the build. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf -- '-----> %s\n' "$*"; }

need=()
command -v git >/dev/null || need+=(git)
command -v ssh >/dev/null || need+=(openssh-client)
command -v curl >/dev/null || need+=(curl)
command -v dockerd >/dev/null || need+=(docker.io)
command -v debootstrap >/dev/null || need+=(debootstrap)
# The Console's tests drive Debian's Chromium with playwright-core, which never downloads a browser.
[ -x /usr/bin/chromium ] || need+=(chromium)
# Let's Encrypt's test CA and its DNS stand-in: the certificate tests order from it, for real.
command -v pebble >/dev/null || need+=(pebble)
command -v openssl >/dev/null || need+=(openssl)
# The store's durability test counts its fsyncs with strace.
command -v strace >/dev/null || need+=(strace)
# bench:router compares against nginx (Debian's build has the proxy, TLS and HTTP/2 modules).
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx)
# bench:router and bench:observability drive the router with wrk; bench:router's HTTP/2 with h2load.
command -v wrk >/dev/null || need+=(wrk)
command -v h2load >/dev/null || need+=(nghttp2-client)
if [ "${#need[@]}" -gt 0 ]; then
  say "Installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
  if [ -n "${DOCKER_HOST:-}" ]; then
    echo " !     DOCKER_HOST=$DOCKER_HOST does not answer" >&2
    exit 1
  fi
  say "Starting dockerd in the background (log: /var/log/rack-dockerd.log)"
  nohup dockerd >/var/log/rack-dockerd.log 2>&1 &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  docker info >/dev/null 2>&1 || { echo " !     dockerd did not start; see /var/log/rack-dockerd.log" >&2; exit 1; }
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "Installing npm dependencies"
  npm ci --no-audit --no-fund
fi
say "Building"
npm run build --silent

if ! docker image inspect rack/stack:latest rack/stack-run:latest >/dev/null 2>&1; then
  bash scripts/make-stack.sh
fi
say "Ready: npm start runs rackd; npm test runs the tests"
