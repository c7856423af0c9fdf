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
# shellcheck source=lib/service-image.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/service-image.sh"
service_image_start registry-image "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/stack/registry"

# --- 1. the image ----------------------------------------------------------------------------
service_image_build "Debian's docker-registry"

# --- 2. the version --------------------------------------------------------------------------
VERSION="$(docker run --rm --network none "$NEW_ID" docker-registry --version 2>&1 |
  awk '{ print $3 }' || true)"
[[ "$VERSION" =~ ^v?2\. ]] || fail "docker-registry --version gave '$VERSION', not 2.x; $IMAGE was not made"
step "Installed docker-registry $VERSION"

# --- 3. the tag ------------------------------------------------------------------------------
service_image_tag
