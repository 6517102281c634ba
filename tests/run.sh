#!/usr/bin/env bash
# Ferry's test command: starts the real components the tests use (private RabbitMQ node, three
# Docker daemons, a registry v2 with auth, svnserve; all on loopback), runs the whole workspace's
# tests with cargo-nextest, and stops the components again.
#
#   tests/run.sh [--keep] [NEXTEST ARGS...]
#
#   --keep             leave the components running afterwards (for debugging); then
#                      `source $FERRY_TEST_STATE/env` gives a shell the tests' variables
#   NEXTEST ARGS       passed to `cargo nextest run --workspace --no-fail-fast`, e.g. a test filter
#
# Environment: FERRY_TEST_STATE (state/log directory; default: a fresh /tmp/ferry-test.XXXX),
# FERRY_TEST_AMQP_PORT (5672), FERRY_TEST_REGISTRY_PORT (5000), FERRY_TEST_SVN_PORT (3690).
# Exit status: the tests' exit status, or 1 when a component cannot start.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

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
    echo "test state and logs: $FERRY_TEST_STATE" >&2
    exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ferry_install_missing
ferry_start_components rabbitmq dockerd:3 registry svnserve

set +e
CARGO_TERM_COLOR=never cargo nextest run --workspace --no-fail-fast "${args[@]}"
rc=$?
set -e
exit "$rc"
