# Sourced by the scripts that make rack's service images on the run stack (make-addon-image.sh,
# make-registry-image.sh, make-swarm-worker.sh): no registry can be pulled from, so each is a
# `docker build --no-cache` of a folder of stack/ FROM rack/stack-run:latest, checked, then tagged.
#
#   service_image_start NAME CONTEXT   checks, a work folder, the clean-up trap, proxy build args
#   service_image_build WORDS          builds CONTEXT; sets OLD_ID (the image IMAGE was) and NEW_ID
#   service_image_tag [ID]             tags ID (default NEW_ID) as IMAGE, drops OLD_ID, says the size
# A script may define on_cleanup to undo its own steps when it fails.

BASE_IMAGE=rack/stack-run:latest
START=$SECONDS
step() { echo "-----> $* ($((SECONDS - START))s)"; }
fail() { echo " !     $*" >&2; exit 1; }

quietly() { # run "$@" with output to a log; show the log's tail on failure
  local log="$WORK/step.log"
  if ! "$@" >"$log" 2>&1; then tail -n 40 "$log" >&2; fail "failed: $*"; fi
}

service_image_start() {
  CONTEXT="$2"
  command -v docker >/dev/null || fail "docker is not installed"
  [[ -f "$CONTEXT/Dockerfile" ]] || fail "$CONTEXT/Dockerfile is missing"
  docker info >/dev/null 2>&1 || fail "cannot reach the Docker engine"
  docker image inspect "$BASE_IMAGE" >/dev/null 2>&1 ||
    fail "$BASE_IMAGE is missing: make it first with scripts/make-stack.sh (as root)"
  WORK="$(mktemp -d "${TMPDIR:-/tmp}/rack-$1.XXXXXX")"
  NEW_ID=""
  TAGGED=""
  trap service_image_cleanup EXIT
  trap 'exit 130' INT TERM
  BUILD_ARGS=()
  local v
  for v in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY; do
    if [[ -n "${!v:-}" ]]; then BUILD_ARGS+=(--build-arg "$v=${!v}"); fi
  done
}

service_image_cleanup() {
  if declare -F on_cleanup >/dev/null; then on_cleanup; fi
  # Untagged, a build is kept only as the parent of a tagged image.
  if [[ -n "$NEW_ID" && -z "$TAGGED" ]]; then docker image rm "$NEW_ID" >/dev/null 2>&1 || true; fi
  rm -rf "$WORK"
}

service_image_build() {
  step "Building $IMAGE from $BASE_IMAGE and $*"
  OLD_ID="$(docker image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)"
  # No layer cache: every run installs the mirror's current packages (security updates included).
  quietly docker build --no-cache --iidfile "$WORK/iid" "${BUILD_ARGS[@]}" "$CONTEXT"
  NEW_ID="$(cat "$WORK/iid")"
}

service_image_tag() {
  quietly docker tag "${1:-$NEW_ID}" "$IMAGE"
  TAGGED=1
  local id size
  id="$(docker image inspect --format '{{.Id}}' "$IMAGE")"
  if [[ -n "$OLD_ID" && "$OLD_ID" != "$id" ]]; then
    # Containers still on the previous image keep it; otherwise it goes.
    docker image rm "$OLD_ID" >/dev/null 2>&1 || true
  fi
  size="$(docker image inspect --format '{{.Size}}' "$IMAGE")"
  step "Done: $IMAGE ${id:7:12}${VERSION:+, $VERSION}, $((size / 1000000)) MB"
}
