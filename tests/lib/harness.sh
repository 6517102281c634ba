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

# The build is the biggest thing a run writes (a clean debug build with line tables: ~1.8 GiB;
# without debug info: ~1.3 GiB; measured on this workspace). A machine short of disk gets the
# smaller build, and an explanation instead of a linker's "No space left on device".
harness_disk_budget() {
    local dir avail_kib
    dir=$(cargo metadata --no-deps --format-version 1 2>/dev/null |
        sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
    dir=${dir:-$PWD/target}
    mkdir -p "$dir"
    avail_kib=$(df -Pk "$dir" | awk 'NR == 2 { print $4 }')
    echo "disk: $((avail_kib / 1024)) MiB free for $dir" >&2
    # A fresh clone gains nothing from incremental state, which would double the build's size.
    if [[ -n "${CI:-}" ]]; then
        export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
    fi
    if ((avail_kib < 4 * 1024 * 1024)) && [[ -z "${CARGO_PROFILE_DEV_DEBUG:-}" ]]; then
        echo "disk: under 4 GiB free; building without debug info (panics keep messages, lose line numbers)" >&2
        export CARGO_PROFILE_DEV_DEBUG=false CARGO_INCREMENTAL=0
    fi
    if ((avail_kib < 2 * 1024 * 1024)); then
        echo "disk: under 2 GiB free for $dir; the build needs about 1.3 GiB and the components a few" \
            "hundred MiB more. Free some space (e.g. 'cargo clean', old /tmp/ferry-test.* state) if it fails." >&2
    fi
}
