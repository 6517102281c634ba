# Shared front part of tests/run.sh and tests/bench.sh (sourced, from the repo root):
# parses `--keep`, picks the state directory, loads the component functions and makes
# sure whatever is started gets stopped on exit (unless --keep).
#
# After sourcing: HARNESS_ARGS holds the remaining arguments; HARNESS_LABEL names the
# run in the final message ("test", "bench").

keep=0
HARNESS_ARGS=()
while (($#)); do
    case "$1" in
    --keep) keep=1 ;;
    --) HARNESS_ARGS+=("$@"); break ;;
    *) HARNESS_ARGS+=("$1") ;;
    esac
    shift
done

if [[ -z "${FERRY_TEST_STATE:-}" ]]; then
    FERRY_TEST_STATE=$(mktemp -d /tmp/ferry-test.XXXX)
fi
export FERRY_TEST_STATE
# shellcheck source=tests/lib/components.sh
source tests/lib/components.sh

harness_finish() {
    local rc=$?
    trap - EXIT INT TERM
    if ((keep)); then
        echo "components left running (--keep). Use them with:"
        echo "  source $FERRY_TEST_STATE/env"
        echo "stop them with:"
        echo "  FERRY_TEST_STATE=$FERRY_TEST_STATE bash -c 'source tests/lib/components.sh && ferry_stop_all'"
    else
        if declare -F ferry_stop_linked_hosts >/dev/null; then
            # In a subshell without -e: a process already gone must not end the clean-up.
            (set +e; ferry_stop_linked_hosts) >>"$FERRY_TEST_STATE/logs/stop.log" 2>&1
        fi
        ferry_stop_all
    fi
    echo "${HARNESS_LABEL:-test} state and logs: $FERRY_TEST_STATE" >&2
    exit "$rc"
}
trap harness_finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
