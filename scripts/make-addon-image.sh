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
BASE_IMAGE=rack/stack-run:latest
START=$SECONDS
step() { echo "-----> $* ($((SECONDS - START))s)"; }
fail() { echo " !     $*" >&2; exit 1; }

case "$KIND" in
  postgres) MAJOR=15 ;;
  redis) MAJOR=7 ;;
  *) fail "usage: make-addon-image.sh postgres|redis" ;;
esac
IMAGE="rack/addon-$KIND:$MAJOR"
CONTEXT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/stack/addons/$KIND"

command -v docker >/dev/null || fail "docker is not installed"
[[ -f "$CONTEXT/Dockerfile" ]] || fail "$CONTEXT/Dockerfile is missing"
docker info >/dev/null 2>&1 || fail "cannot reach the Docker engine"
docker image inspect "$BASE_IMAGE" >/dev/null 2>&1 ||
  fail "$BASE_IMAGE is missing: make it first with scripts/make-stack.sh (as root)"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/rack-addon-image.XXXXXX")"
BASE_ID=""
TAGGED=""
cleanup() {
  # Unlabelled, the first build is kept only as the labelled image's parent.
  if [[ -n "$BASE_ID" && -z "$TAGGED" ]]; then docker image rm "$BASE_ID" >/dev/null 2>&1 || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

BUILD_ARGS=()
for v in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY; do
  if [[ -n "${!v:-}" ]]; then BUILD_ARGS+=(--build-arg "$v=${!v}"); fi
done

quietly() { # run "$@" with output to a log; show the log's tail on failure
  local log="$WORK/step.log"
  if ! "$@" >"$log" 2>&1; then tail -n 40 "$log" >&2; fail "failed: $*"; fi
}

# --- 1. the image ----------------------------------------------------------------------------
step "Building $IMAGE from $BASE_IMAGE and Debian's $KIND packages"
OLD_ID="$(docker image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)"
# No layer cache: every run installs the mirror's current packages (security updates included).
quietly docker build --no-cache --iidfile "$WORK/iid" "${BUILD_ARGS[@]}" "$CONTEXT"
BASE_ID="$(cat "$WORK/iid")"

# --- 2. the version --------------------------------------------------------------------------
VERSION="$(docker run --rm --network none "$BASE_ID" rack-addon-version 2>"$WORK/version.log" || true)"
[[ -n "$VERSION" ]] || { cat "$WORK/version.log" >&2; fail "rack-addon-version gave nothing in the new image"; }
[[ "$VERSION" =~ ^[0-9]+(\.[0-9]+)+$ ]] || fail "rack-addon-version gave '$VERSION', not a version number"
[[ "${VERSION%%.*}" == "$MAJOR" ]] ||
  fail "Debian's packages installed $KIND $VERSION, not $MAJOR.x; $IMAGE was not made"
step "Installed $KIND $VERSION"

# --- 3. the label and the tag ----------------------------------------------------------------
mkdir "$WORK/label"
printf 'FROM %s\nLABEL rack.addon.version=%s\n' "$BASE_ID" "$VERSION" >"$WORK/label/Dockerfile"
quietly docker build -t "$IMAGE" "$WORK/label"
TAGGED=1
NEW_ID="$(docker image inspect --format '{{.Id}}' "$IMAGE")"
if [[ -n "$OLD_ID" && "$OLD_ID" != "$NEW_ID" ]]; then
  # Add-on containers still on the previous image keep it; otherwise it goes.
  docker image rm "$OLD_ID" >/dev/null 2>&1 || true
fi
SIZE="$(docker image inspect --format '{{.Size}}' "$IMAGE")"
step "Done: $IMAGE ${NEW_ID:7:12}, $KIND $VERSION, $((SIZE / 1000000)) MB"
