#!/usr/bin/env bash
# Base images without any registry: a Debian root filesystem built by mmdebstrap from this
# machine's own apt sources, with the packages an image needs already inside (so the
# image's build needs no network), imported with `docker import`.
#
#   deploy/base-image.sh <name> <package,package,...>
#       prints the image reference, e.g. ferry-base/ferry:bookworm-3f2a9c1e04b7, and tags it
#       ferry-base/ferry:bookworm too
#
# The tag is a hash of the package list, the suite and the apt sources: the same inputs give
# the same tag, so a daemon that has it is not asked again, and the root filesystem's tar is
# kept in FERRY_IMAGE_CACHE (/var/cache/ferry/images) for daemons that do not (a test's
# fresh daemon imports it in ~2 s instead of ~40 s of mmdebstrap).
#
# Environment: DOCKER_HOST (the daemon to import into), FERRY_IMAGE_CACHE, FERRY_SUITE (the
# machine's own release, from /etc/os-release). Needs root (mmdebstrap, apt).
set -euo pipefail

name=${1:?usage: base-image.sh <name> <package,package,...>}
packages=${2:?usage: base-image.sh <name> <package,package,...>}
cache=${FERRY_IMAGE_CACHE:-/var/cache/ferry/images}
suite=${FERRY_SUITE:-$(. /etc/os-release && echo "$VERSION_CODENAME")}

# How the root filesystem is made. merged-usr: /usr merged by mmdebstrap's own hook, not by
# the usrmerge package (which would bring perl, ~50 MB, into every image).
recipe=(--variant=minbase --format=tar --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr
    --dpkgopt='path-exclude=/usr/share/man/*'
    --dpkgopt='path-exclude=/usr/share/doc/*'
    --dpkgopt='path-include=/usr/share/doc/*/copyright'
    --dpkgopt='path-exclude=/usr/share/locale/*'
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin')

# What the root filesystem is made of: any change here is a new tag.
key=$(
    {
        echo "$suite"
        echo "$packages"
        printf '%s\n' "${recipe[@]}"
        cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources \
            2>/dev/null || true
    } | sha256sum | cut -c1-12
)
image=ferry-base/$name:$suite-$key

# Also tagged ferry-base/<name>:<suite>, a name a Dockerfile can use in FROM without knowing
# the hash (the example applications' Dockerfiles do).
if docker image inspect "$image" >/dev/null 2>&1; then
    docker tag "$image" "ferry-base/$name:$suite"
    echo "$image"
    exit 0
fi

mkdir -p "$cache"
tar=$cache/$name-$suite-$key.tar
if [[ ! -s $tar ]]; then
    if ! command -v mmdebstrap >/dev/null; then
        echo "base-image: mmdebstrap is missing: apt-get install mmdebstrap" >&2
        exit 1
    fi
    echo "base-image: building $image with mmdebstrap ($packages)" >&2
    # minbase: dpkg, apt and the essentials only; no recommends, so the packages bring what
    # they need and nothing else. Documentation and apt's lists are left out of the image.
    mmdebstrap --quiet "${recipe[@]}" --include="$packages" "$suite" "$tar.part" >&2
    mv "$tar.part" "$tar"
fi
docker import --message "mmdebstrap $suite: $packages" "$tar" "$image" >/dev/null
docker tag "$image" "ferry-base/$name:$suite"
echo "$image"
