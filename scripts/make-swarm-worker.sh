#!/usr/bin/env bash
# Builds rack/swarm-worker:latest, a Docker Swarm worker node that runs as a container on this
# machine (the swarm runtime's test harness: a real multi-node swarm on one host), from Debian's
# docker.io on the local run stack, since no registry can be pulled from:
#
#   1. docker build (no cache: current packages) of stack/swarm-worker/ (Dockerfile + the
#      rack-swarm-worker-start entrypoint: picks iptables nft or legacy, then
#      `dockerd --storage-driver=vfs`) FROM rack/stack-run:latest, labelled rack.managed=true
#   2. start it once with the flags a worker needs here (no --privileged: the machine withholds
#      CAP_SYS_RESOURCE) and wait for its dockerd to answer on the vfs driver; then remove it
#   3. tag it; the previous image goes if nothing uses it
#
# A worker is then run as (RUN_FLAGS below; the tmpfs /var/lib/docker means a stopped worker
# forgets its images and its swarm membership):
#   docker run -d --name W --hostname W --network NET $RUN_FLAGS rack/swarm-worker:latest [DOCKERD-ARGS]
#
# Usage: scripts/make-swarm-worker.sh      (needs the Docker engine, not root)
# Env:   http_proxy, https_proxy, no_proxy (and upper case) reach apt as build args when set.
set -euo pipefail

IMAGE=rack/swarm-worker:latest
BASE_IMAGE=rack/stack-run:latest
RUN_FLAGS=(--cap-add SYS_ADMIN --cap-add NET_ADMIN --cap-add MKNOD
  --security-opt seccomp=unconfined --security-opt apparmor=unconfined
  --security-opt systempaths=unconfined -v /sys/fs/cgroup:/sys/fs/cgroup:rw
  --tmpfs /run --tmpfs /var/lib/docker:exec)
START=$SECONDS
step() { echo "-----> $* ($((SECONDS - START))s)"; }
fail() { echo " !     $*" >&2; exit 1; }

CONTEXT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/stack/swarm-worker"
command -v docker >/dev/null || fail "docker is not installed"
[[ -f "$CONTEXT/Dockerfile" ]] || fail "$CONTEXT/Dockerfile is missing"
docker info >/dev/null 2>&1 || fail "cannot reach the Docker engine"
docker image inspect "$BASE_IMAGE" >/dev/null 2>&1 ||
  fail "$BASE_IMAGE is missing: make it first with scripts/make-stack.sh (as root)"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/rack-swarm-worker.XXXXXX")"
NEW_ID=""
TAGGED=""
PROBE=""
cleanup() {
  if [[ -n "$PROBE" ]]; then docker rm -f "$PROBE" >/dev/null 2>&1 || true; fi
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
step "Building $IMAGE from $BASE_IMAGE and Debian's docker.io"
OLD_ID="$(docker image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)"
# No layer cache: every run installs the mirror's current packages (security updates included).
quietly docker build --no-cache --iidfile "$WORK/iid" "${BUILD_ARGS[@]}" "$CONTEXT"
NEW_ID="$(cat "$WORK/iid")"

# --- 2. a trial start ------------------------------------------------------------------------
step "Starting it once: its dockerd on the vfs storage driver"
PROBE="rack-swarm-worker-probe-$$"
quietly docker run -d --name "$PROBE" --network none "${RUN_FLAGS[@]}" "$NEW_ID"
driver=""
for _ in $(seq 100); do
  driver="$(docker exec "$PROBE" docker info --format '{{.Driver}} {{.ServerVersion}}' 2>/dev/null || true)"
  [[ -n "$driver" ]] && break
  [[ "$(docker inspect --format '{{.State.Running}}' "$PROBE")" == true ]] || break
  sleep 0.2
done
if [[ "$driver" != vfs\ * ]]; then
  docker logs --tail 20 "$PROBE" >&2 || true
  fail "the worker's dockerd did not come up on vfs"
fi
backend="$(docker logs "$PROBE" 2>&1 | sed -n 's/^rack-swarm-worker: iptables //p' | head -n 1)"
docker rm -f "$PROBE" >/dev/null 2>&1 || true
PROBE=""
step "Its dockerd ${driver#vfs } answered (vfs, iptables ${backend:-?})"

# --- 3. the tag ------------------------------------------------------------------------------
quietly docker tag "$NEW_ID" "$IMAGE"
TAGGED=1
if [[ -n "$OLD_ID" && "$OLD_ID" != "$NEW_ID" ]]; then
  # Workers still on the previous image keep it; otherwise it goes.
  docker image rm "$OLD_ID" >/dev/null 2>&1 || true
fi
SIZE="$(docker image inspect --format '{{.Size}}' "$IMAGE")"
step "Done: $IMAGE ${NEW_ID:7:12}, $((SIZE / 1000000)) MB"
