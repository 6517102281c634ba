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
BENCH_COMPONENTS=(rabbitmq)

keep=0
args=()
while (($#)); do
    case "$1" in
    --keep) keep=1 ;;
    --) args+=("$@"); break ;;
    *) args+=("$1") ;;
    esac
    shift
done

if [[ -z "${FERRY_TEST_STATE:-}" ]]; then
    FERRY_TEST_STATE=$(mktemp -d /tmp/ferry-test.XXXX)
fi
export FERRY_TEST_STATE
# shellcheck source=tests/lib/components.sh
source tests/lib/components.sh

finish() {
    local rc=$?
    trap - EXIT INT TERM
    if ((keep)); then
        echo "components left running (--keep). Use them with:"
        echo "  source $FERRY_TEST_STATE/env"
        echo "stop them with:"
        echo "  FERRY_TEST_STATE=$FERRY_TEST_STATE bash -c 'source tests/lib/components.sh && ferry_stop_all'"
    else
        ferry_stop_all
    fi
    echo "bench state and logs: $FERRY_TEST_STATE" >&2
    exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ferry_install_missing
ferry_start_components "${BENCH_COMPONENTS[@]}"

set +e
CARGO_TERM_COLOR=never cargo run --release -q -p ferry-bench -- "${args[@]}"
rc=$?
set -e
exit "$rc"
