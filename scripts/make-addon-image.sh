#!/usr/bin/env bash
# Builds the image of one kind of add-on (a backing service rackd runs for apps) from Debian's
# packages, on the local run stack, since no registry can be pulled from:
#
#   postgres -> rack/addon-postgres:15  (postgresql-15 and its client)
#   redis    -> rack/addon-redis:7      (redis-server and redis-tools)
#
#   1. docker build (no cache: current packages) of stack/addons/KIND/ (Dockerfile + the
#      rack-addon-* commands) FROM rack/stack-run:latest, labelled rack.managed=true and
#      rack.addon.kind=KIND
#   2. check that the installed server is the pinned major version
#   3. a one-line build FROM that image adds rack.addon.version=<full version> (known only after
#      apt installed it) and takes the tag; the previous image goes if nothing uses it
#
# Usage: scripts/make-addon-image.sh postgres|redis      (needs the Docker engine, not root)
# Env:   http_proxy, https_proxy, no_proxy (and upper case) reach apt as build args when set.
set -euo pipefail

KIND="${1:-}"
# shellcheck source=lib/service-image.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/service-image.sh"

case "$KIND" in
  postgres) MAJOR=15 ;;
  redis) MAJOR=7 ;;
  *) fail "usage: make-addon-image.sh postgres|redis" ;;
esac
IMAGE="rack/addon-$KIND:$MAJOR"
service_image_start addon-image "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/stack/addons/$KIND"

# --- 1. the image ----------------------------------------------------------------------------
service_image_build "Debian's $KIND packages"

# --- 2. the version --------------------------------------------------------------------------
VERSION="$(docker run --rm --network none "$NEW_ID" rack-addon-version 2>"$WORK/version.log" || true)"
[[ -n "$VERSION" ]] || { cat "$WORK/version.log" >&2; fail "rack-addon-version gave nothing in the new image"; }
[[ "$VERSION" =~ ^[0-9]+(\.[0-9]+)+$ ]] || fail "rack-addon-version gave '$VERSION', not a version number"
[[ "${VERSION%%.*}" == "$MAJOR" ]] ||
  fail "Debian's packages installed $KIND $VERSION, not $MAJOR.x; $IMAGE was not made"
step "Installed $KIND $VERSION"

# --- 3. the label and the tag ----------------------------------------------------------------
mkdir "$WORK/label"
printf 'FROM %s\nLABEL rack.addon.version=%s\n' "$NEW_ID" "$VERSION" >"$WORK/label/Dockerfile"
quietly docker build --iidfile "$WORK/label-iid" "$WORK/label"
service_image_tag "$(cat "$WORK/label-iid")"
