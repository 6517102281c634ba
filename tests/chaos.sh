#!/usr/bin/env bash
# Ferry's chaos suite (on demand, not part of tests/run.sh or CI): starts the components on
# loopback (RabbitMQ, two Docker daemons, a registry, svnserve), builds the service binaries,
# and runs ferry-chaos: 50 pipeline runs (SVN commit → production) while a driver SIGKILLs
# random service processes and restarts them, and restarts RabbitMQ twice. It prints
#   bench: chaos_runs = N, chaos_lost, chaos_duplicate_deploys, chaos_stuck (target 0 / 0 / 0)
# and more figures, then stops the components. About 6 minutes on 2 cores.
#
# With CHAOS_CLUSTER=1 the services (two rancher-updaters among them) use the harness's
# three-node RabbitMQ cluster instead, and nodes are killed, restarted and cut off, and the
# updater queue's leader moved, instead of the broker restarts (CHAOS_CLUSTER_FAULTS,
# default kill,partition,leader,restart). Its figures are named cluster_chaos_*.
#
#   tests/chaos.sh [--keep]
#   CHAOS_CLUSTER=1 tests/chaos.sh [--keep]
#
# Same environment and --keep as tests/run.sh (FERRY_TEST_STATE, FERRY_TEST_AMQP_PORT,
# FERRY_TEST_REGISTRY_PORT, FERRY_TEST_SVN_PORT, FERRY_TEST_RABBIT_NAME), plus ferry-chaos'
# knobs (CHAOS_RUNS, CHAOS_SEED, CHAOS_BROKER_DOWN=stop|kill|mixed, ...: see
# tests/chaos/src/main.rs) and FERRY_CARGO_LOCK (a file to flock around the build, for
# machines where several builds share the cores). Services' logs and every event seen go to
# $FERRY_TEST_STATE/chaos/<namespace>/.
# Exit status: ferry-chaos' (0 when the suite ran, whatever the counts; 1 on a harness
# failure), or 1 when a component cannot start or the build fails.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

HARNESS_LABEL=chaos
# shellcheck source=tests/lib/harness.sh
source tests/lib/harness.sh "$@"

ferry_install_missing
components=(rabbitmq dockerd:2 registry svnserve)
[[ "${CHAOS_CLUSTER:-}" == 1 ]] && components+=(rabbitmq-cluster)
ferry_start_components "${components[@]}"

set +e
lock=()
[[ -n "${FERRY_CARGO_LOCK:-}" ]] && lock=(flock "$FERRY_CARGO_LOCK")
# ferry-chaos runs the service binaries that sit next to it.
CARGO_TERM_COLOR=never "${lock[@]}" cargo build -q --workspace --bins || exit 1
"${CARGO_TARGET_DIR:-target}"/debug/ferry-chaos
rc=$?
set -e
exit "$rc"
