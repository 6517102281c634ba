#!/usr/bin/env bash
# The hello example's base image, ferry-quickstart/busybox:1: Debian's static busybox
# (busybox-static) in an image FROM scratch, so the build needs no registry and no network.
#
#   deploy/examples/hello/bases.sh           (DOCKER_HOST: the daemon that gets it)
set -euo pipefail
image=ferry-quickstart/busybox:1
docker image inspect "$image" >/dev/null 2>&1 && exit 0
if [[ ! -x /bin/busybox ]] || ldd /bin/busybox >/dev/null 2>&1; then
    echo "bases.sh: /bin/busybox must be the static build: apt-get install busybox-static" >&2
    exit 1
fi
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
cp /bin/busybox "$d/busybox"
printf 'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\n' >"$d/Dockerfile"
docker build -q --network host -t "$image" "$d" >/dev/null
