#!/usr/bin/env bash
# Ferry's benchmarks: starts the components the benchmarks need (on loopback), runs the ferry-bench
# crate in release mode, and stops the components again. ferry-bench prints one line per figure:
#   bench: <name> = <value> <unit>
#
#   tests/bench.sh [--keep] [FERRY-BENCH ARGS...]
#
# Same environment and --keep as tests/run.sh. Exit status: ferry-bench's, or 1 when a component
# cannot start.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Components the benchmarks use; a new figure that needs more adds them here
# (names as in ferry_start_components: rabbitmq dockerd:N registry svnserve).
BENCH_COMPONENTS=(rabbitmq dockerd:5 registry svnserve)

HARNESS_LABEL=bench
# shellcheck source=tests/lib/harness.sh
source tests/lib/harness.sh "$@"

ferry_install_missing
harness_disk_budget
ferry_start_components "${BENCH_COMPONENTS[@]}"
# Separate "machines" for the pre-pull figures: own namespace and a 100 Mbit/s link each.
# shellcheck source=tests/lib/linked-hosts.sh
source tests/lib/linked-hosts.sh
ferry_start_linked_hosts 4 100mbit

set +e
# The e2e figures run the seven services as processes, the rollback figure the `ferry` CLI.
CARGO_TERM_COLOR=never cargo build --release -q --workspace --bins || exit 1
CARGO_TERM_COLOR=never cargo run --release -q -p ferry-bench -- "${HARNESS_ARGS[@]}"
rc=$?
# Ferry's images (figures image_<name>_mb): deploy/images.sh, as users build them (release
# binaries, bases from Debian's packages), onto the first Docker host. BENCH_ONLY=images.
if [[ -z "${BENCH_ONLY:-}" || ",${BENCH_ONLY}," == *,images,* ]]; then
    started=$SECONDS
    DOCKER_HOST=${FERRY_TEST_DOCKER_HOSTS%%,*} deploy/images.sh 2>"$FERRY_TEST_STATE/logs/images.log" |
        awk '/^image: / { printf "bench: image_%s_mb = %s MB\n", $2, $3 }' || rc=1
    echo "bench: images_s = $((SECONDS - started)) s"
fi
# The chaos suite (its own driver, tests/chaos): BENCH_ONLY=chaos, or tests/chaos.sh.
if [[ ",${BENCH_ONLY:-}," == *,chaos,* ]]; then
    CARGO_TERM_COLOR=never cargo build -q --workspace --bins && target/debug/ferry-chaos || rc=1
fi
set -e
exit "$rc"
