#!/usr/bin/env bash
# Build the proxy image (ferry/haproxy:2.6, or the tag given) on DOCKER_HOST without any
# registry: a Debian base with haproxy and socat from this machine's apt sources
# (deploy/base-image.sh, cached), then deploy/proxy/Dockerfile on top of it.
#
#   DOCKER_HOST=... deploy/proxy/build.sh [tag]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
tag=${1:-ferry/haproxy:2.6}
base=$(deploy/base-image.sh haproxy haproxy,socat)
docker build -q --network host --build-arg "BASE=$base" -t "$tag" deploy/proxy >/dev/null
echo "$tag"
