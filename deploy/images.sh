#!/usr/bin/env bash
# Build Ferry's images with no registry: the bases from Debian's packages
# (deploy/base-image.sh: mmdebstrap + docker import, cached), Ferry's binaries with this
# machine's Rust toolchain, then deploy/Dockerfile (Ferry: every service and the CLI),
# deploy/rabbitmq/Dockerfile, deploy/registry/Dockerfile and deploy/prometheus/Dockerfile
# (Prometheus with Ferry's scrape configuration and alerts). Prints one line per image:
#   image: <name> <size in MB>
#
#   deploy/images.sh [--tag TAG]        TAG defaults to "local"
#
# Environment:
#   DOCKER_HOST         the daemon that gets the images (the default one if unset)
#   FERRY_BASE          a base image to use instead of mmdebstrap's, e.g.
#                       debian:bookworm-slim from your mirror (its packages are then
#                       installed during the build, which needs the mirror's apt sources)
#   FERRY_IMAGE_CACHE   where the root filesystems are cached (/var/cache/ferry/images)
#   FERRY_CARGO_PROFILE the cargo profile of the binaries (release)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

tag=local
while (($#)); do
    case $1 in
        --tag) tag=${2:?--tag needs a value}; shift 2 ;;
        -h | --help) sed -n '2,18p' "$0"; exit 0 ;;
        *) echo "images.sh: unknown argument $1 (see --help)" >&2; exit 64 ;;
    esac
done
profile=${FERRY_CARGO_PROFILE:-release}
BINARIES=(hook-receiver builder pusher puller rancher-updater tester notifier ferry)

log() { printf 'images: %s\n' "$*" >&2; }
mb() { docker image inspect --format '{{.Size}}' "$1" | awk '{printf "%.1f", $1 / 1000000}'; }

# The bases: one root filesystem per image, each with its packages inside, so no build
# below needs a network.
base_for() {
    if [[ -n ${FERRY_BASE:-} ]]; then
        echo "$FERRY_BASE"
    else
        deploy/base-image.sh "$1" "$2"
    fi
}
t0=$SECONDS
bases=$(mktemp -d)
trap 'rm -rf "$bases"' EXIT
# In parallel: mmdebstrap spends most of its time waiting on downloads and dpkg.
base_for ferry ca-certificates,git,subversion,curl >"$bases/ferry" &
base_for rabbitmq rabbitmq-server >"$bases/rabbitmq" &
base_for registry docker-registry >"$bases/registry" &
base_for prometheus prometheus >"$bases/prometheus" &
for job in $(jobs -p); do wait "$job" || { echo "images.sh: a base image failed (above)" >&2; exit 1; }; done
ferry_base=$(<"$bases/ferry") rabbitmq_base=$(<"$bases/rabbitmq") registry_base=$(<"$bases/registry")
prometheus_base=$(<"$bases/prometheus")
log "bases ready in $((SECONDS - t0)) s: $ferry_base $rabbitmq_base $registry_base $prometheus_base"

t0=$SECONDS
# The whole workspace's binaries, as tests/bench.sh builds them: the same feature set, so
# one build serves both.
cargo build --quiet --profile "$profile" --locked --workspace --bins
# Cargo's folder for a profile: `dev` builds into target/debug.
out=$profile
[[ $profile == dev ]] && out=debug
context=$ROOT/target/ferry-image
rm -rf "$context"
mkdir -p "$context/bin"
for b in "${BINARIES[@]}"; do
    # Symbols and line tables are for backtraces on the build machine: the image is 30 MB
    # smaller without them (panic messages keep their text).
    strip --strip-all -o "$context/bin/$b" "$ROOT/target/$out/$b"
done
log "binaries ready in $((SECONDS - t0)) s"

t0=$SECONDS
build() { # <name> <base> <dockerfile> <context>
    docker build --quiet --build-arg "BASE=$2" -f "$3" -t "ferry/$1:$tag" "$4" >/dev/null
}
build ferry "$ferry_base" deploy/Dockerfile "$context"
build rabbitmq "$rabbitmq_base" deploy/rabbitmq/Dockerfile deploy/rabbitmq
build registry "$registry_base" deploy/registry/Dockerfile deploy/registry
build prometheus "$prometheus_base" deploy/prometheus/Dockerfile deploy/prometheus
log "images built in $((SECONDS - t0)) s"

for name in ferry rabbitmq registry prometheus; do
    echo "image: $name $(mb "ferry/$name:$tag")"
done
