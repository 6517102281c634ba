#!/usr/bin/env bash
# Ferry's test command: starts the real components the tests use (private RabbitMQ node, a
# three-node RabbitMQ cluster in network namespaces, three Docker daemons, a registry v2 with
# auth, svnserve, PostgreSQL 15, sshd, chromedriver for headless Chromium; all on loopback; a
# build Docker daemon in its own network namespace behind NAT; and the compose host, a namespace
# where Ferry runs as containers), runs the whole workspace's tests with cargo-nextest, and stops
# the components again.
#
#   tests/run.sh [--keep] [NEXTEST ARGS...]
#
#   --keep             leave the components running afterwards (for debugging); then
#                      `source $FERRY_TEST_STATE/env` gives a shell the tests' variables
#   NEXTEST ARGS       passed to `cargo nextest run --workspace --no-fail-fast`, e.g. a test filter
#
# Environment: FERRY_TEST_STATE (state/log directory; default: a fresh /tmp/ferry-test.XXXX),
# FERRY_TEST_AMQP_PORT (5672), FERRY_TEST_REGISTRY_PORT (5000), FERRY_TEST_SVN_PORT (3690),
# FERRY_TEST_CHROMEDRIVER_PORT (9515).
# Exit status: the tests' exit status, or 1 when a component cannot start.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

HARNESS_LABEL=test
# shellcheck source=tests/lib/harness.sh
source tests/lib/harness.sh "$@"

ferry_install_missing
harness_disk_budget
# Ports the tests reserve (testkit's free_port) are this run's alone.
rm -rf "$FERRY_TEST_STATE/ports"
# The first Docker host also listens on TCP behind TLS, for the TLS host tests.
export FERRY_TEST_DOCKER_TLS=1
ferry_start_components rabbitmq rabbitmq-cluster dockerd:3 registry svnserve postgres sshd dockerd-build compose-host \
    chromedriver

set +e
# Service binaries first: tests start them as processes, and cargo builds a package's
# binaries for its own tests only.
CARGO_TERM_COLOR=never cargo build --workspace --bins || exit 1
CARGO_TERM_COLOR=never cargo nextest run --workspace --no-fail-fast "${HARNESS_ARGS[@]}"
rc=$?
set -e
exit "$rc"
