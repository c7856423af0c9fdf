#!/usr/bin/env bash
# Builds rack/registry:latest, the private image registry the swarm runtime pushes app images to
# and the swarm's nodes pull from, from Debian's docker-registry package (Docker Distribution 2.x)
# on the local run stack, since no registry can be pulled from:
#
#   1. docker build (no cache: current packages) of stack/registry/ (Dockerfile, config.yml and the
#      rack-registry-start command: TLS when /certs/registry.crt and .key are mounted)
#      FROM rack/stack-run:latest, labelled rack.managed=true
#   2. check that the installed registry is 2.x
#   3. tag it; the previous image goes if nothing uses it
#
# Usage: scripts/make-registry-image.sh      (needs the Docker engine, not root)
# Env:   http_proxy, https_proxy, no_proxy (and upper case) reach apt as build args when set.
set -euo pipefail

IMAGE=rack/registry:latest
BASE_IMAGE=rack/stack-run:latest
START=$SECONDS
step() { echo "-----> $* ($((SECONDS - START))s)"; }
fail() { echo " !     $*" >&2; exit 1; }

CONTEXT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/stack/registry"
command -v docker >/dev/null || fail "docker is not installed"
[[ -f "$CONTEXT/Dockerfile" ]] || fail "$CONTEXT/Dockerfile is missing"
docker info >/dev/null 2>&1 || fail "cannot reach the Docker engine"
docker image inspect "$BASE_IMAGE" >/dev/null 2>&1 ||
  fail "$BASE_IMAGE is missing: make it first with scripts/make-stack.sh (as root)"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/rack-registry-image.XXXXXX")"
NEW_ID=""
TAGGED=""
cleanup() {
  if [[ -n "$NEW_ID" && -z "$TAGGED" ]]; then docker image rm "$NEW_ID" >/dev/null 2>&1 || true; fi
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
step "Building $IMAGE from $BASE_IMAGE and Debian's docker-registry"
OLD_ID="$(docker image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)"
# No layer cache: every run installs the mirror's current packages (security updates included).
quietly docker build --no-cache --iidfile "$WORK/iid" "${BUILD_ARGS[@]}" "$CONTEXT"
NEW_ID="$(cat "$WORK/iid")"

# --- 2. the version --------------------------------------------------------------------------
VERSION="$(docker run --rm --network none "$NEW_ID" docker-registry --version 2>&1 |
  awk '{ print $3 }' || true)"
[[ "$VERSION" =~ ^v?2\. ]] || fail "docker-registry --version gave '$VERSION', not 2.x; $IMAGE was not made"
step "Installed docker-registry $VERSION"

# --- 3. the tag ------------------------------------------------------------------------------
quietly docker tag "$NEW_ID" "$IMAGE"
TAGGED=1
if [[ -n "$OLD_ID" && "$OLD_ID" != "$NEW_ID" ]]; then
  # A registry still running the previous image keeps it; otherwise it goes.
  docker image rm "$OLD_ID" >/dev/null 2>&1 || true
fi
SIZE="$(docker image inspect --format '{{.Size}}' "$IMAGE")"
step "Done: $IMAGE ${NEW_ID:7:12}, $((SIZE / 1000000)) MB"
