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
RUN_FLAGS=(--cap-add SYS_ADMIN --cap-add NET_ADMIN --cap-add MKNOD
  --security-opt seccomp=unconfined --security-opt apparmor=unconfined
  --security-opt systempaths=unconfined -v /sys/fs/cgroup:/sys/fs/cgroup:rw
  --tmpfs /run --tmpfs /var/lib/docker:exec)
# shellcheck source=lib/service-image.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/service-image.sh"
PROBE=""
on_cleanup() { if [[ -n "$PROBE" ]]; then docker rm -f "$PROBE" >/dev/null 2>&1 || true; fi; }
service_image_start swarm-worker "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/stack/swarm-worker"

# --- 1. the image ----------------------------------------------------------------------------
service_image_build "Debian's docker.io"

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
service_image_tag
