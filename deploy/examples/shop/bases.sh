#!/usr/bin/env bash
# The shop example's two base images, from Debian packages only (deploy/base-image.sh:
# mmdebstrap + docker import, cached in /var/cache/ferry/images), tagged
#   ferry-base/shop-build:<suite>     php8.2-cli, composer, esbuild: the Dockerfile's build stage
#   ferry-base/shop-runtime:<suite>   nginx, php8.2-fpm: what the image runs
# The Dockerfile's build then needs no network at all.
#
#   deploy/examples/shop/bases.sh           (DOCKER_HOST: the daemon that gets them)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../../.."

# No perl in either: deploy/base-image.sh runs mmdebstrap with its merged-usr hook, so
# minbase's init-system-helpers does not pull in usrmerge (and perl with it).
# composer pulls in php8.2-cli and its PHP libraries (symfony/console...) as Debian
# packages; no php extension beyond php8.2-cli's own is needed for path repositories
# (no zip, no git, no curl: nothing is downloaded).
build=php8.2-cli,composer,esbuild
# nginx (the light flavour is only a transitional package in bookworm) and php8.2-fpm
# (it brings php8.2-opcache). systemd-standalone-tmpfiles satisfies php8.2-fpm's
# "systemd | systemd-tmpfiles" without installing systemd (~30 MB) into the image.
runtime=nginx,php8.2-fpm,systemd-standalone-tmpfiles

# In parallel: mmdebstrap mostly waits on downloads and dpkg.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
deploy/base-image.sh shop-build "$build" >"$tmp/build" &
deploy/base-image.sh shop-runtime "$runtime" >"$tmp/runtime" &
for job in $(jobs -p); do wait "$job" || { echo "bases.sh: a base image failed (above)" >&2; exit 1; }; done
cat "$tmp/build" "$tmp/runtime"
