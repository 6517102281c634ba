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
BENCH_COMPONENTS=(rabbitmq rabbitmq-cluster dockerd:5 registry svnserve)
# A BENCH_ONLY made only of figures that need no more than RabbitMQ starts only that.
rabbitmq_only=0
if [[ -n "${BENCH_ONLY:-}" ]]; then
    rabbitmq_only=1
    IFS=, read -ra bench_parts <<<"$BENCH_ONLY"
    for part in "${bench_parts[@]}"; do
        [[ ",bus,ledger,hooks,dashboard," == *",$part,"* ]] || rabbitmq_only=0
    done
fi
if ((rabbitmq_only)); then
    BENCH_COMPONENTS=(rabbitmq)
fi

HARNESS_LABEL=bench
# shellcheck source=tests/lib/harness.sh
source tests/lib/harness.sh "$@"

ferry_install_missing
harness_disk_budget
ferry_start_components "${BENCH_COMPONENTS[@]}"
# Separate "machines" for the pre-pull figures: own namespace and a 100 Mbit/s link each.
if ((!rabbitmq_only)); then
    # shellcheck source=tests/lib/linked-hosts.sh
    source tests/lib/linked-hosts.sh
    ferry_start_linked_hosts 4 100mbit
fi

set +e
# The e2e figures run the seven services as processes, the dashboard figures the
# hook-receiver (target/release/hook-receiver), the rollback figure the `ferry` CLI.
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
# The PHP example's commit to production (figure shop_commit_to_prod_warm_s): the quickstart
# with --example shop on ports of its own, then three commits of one PHP file each; from
# just before `svn commit` to the run's test.passed.production, the median. Each is preceded
# by a round of the old chain's shell job (tests/bench/src/shell-job.sh) on the same hosts,
# registry and Dockerfile, building its own copy of the code (trunk/shell, which starts no
# Ferry run): shop_commit_to_prod_over_shell is the ratio of the medians.
if [[ -z "${BENCH_ONLY:-}" || ",${BENCH_ONLY}," == *,shop,* ]]; then
    qs_state="$FERRY_TEST_STATE/quickstart-shop"
    qs=(env FERRY_QUICKSTART_STATE="$qs_state" FERRY_QUICKSTART_API_PORT=8491
        FERRY_QUICKSTART_AMQP_PORT=5697 FERRY_QUICKSTART_REGISTRY_PORT=5027
        FERRY_QUICKSTART_SVN_PORT=3717 FERRY_QUICKSTART_SMTP_PORT=2537 deploy/quickstart.sh)
    qs_log="$FERRY_TEST_STATE/logs/quickstart-shop.log"
    # One round of the shell job on the quickstart's components: seconds from its commit
    # to production serving it.
    shop_shell_round() (
        # shellcheck source=/dev/null
        source "$qs_state/env"
        local wc="$qs_state/shop-wc" ports rev t0
        local auth=(--username "$FERRY_TEST_SVN_USER" --password "$FERRY_TEST_SVN_PASSWORD" --non-interactive --no-auth-cache)
        if [[ ! -d $wc/trunk/shell ]]; then
            svn copy -q "$wc/trunk/shop" "$wc/trunk/shell"
            svn commit -q "${auth[@]}" -m "the shell job's copy" "$wc" >/dev/null
        fi
        echo "// shell round $RANDOM" >>"$wc/trunk/shell/src/App.php"
        t0=$(date +%s.%N)
        rev=$(svn commit "${auth[@]}" -m "shell round" "$wc" | sed -n 's/^Committed revision \([0-9]*\)\./\1/p')
        IFS=, read -r h1 h2 _ <<<"$FERRY_TEST_DOCKER_HOSTS"
        SVN_URL="$(svn info --show-item repos-root-url "$wc")/trunk/shell" REVISION=$rev \
        SVN_USER=$FERRY_TEST_SVN_USER SVN_PASSWORD=$FERRY_TEST_SVN_PASSWORD \
        CONFIG_DIR="$qs_state/config-repo/shop" \
        OVERLAY="Dockerfile=Dockerfile env/production.env=.env nginx/site.conf=docker/nginx.conf nginx/nginx-main.conf=docker/nginx-main.conf php/fpm.conf=docker/php-fpm.conf bin/shop-serve=docker/shop-serve" \
        BUILD_HOST=$h1 STAGING_HOST=$h1 PRODUCTION_HOST=$h2 IMAGE="$FERRY_TEST_REGISTRY/bench/shell-shop" \
        REGISTRY=$FERRY_TEST_REGISTRY REGISTRY_USER=$FERRY_TEST_REGISTRY_USER REGISTRY_PASSWORD=$FERRY_TEST_REGISTRY_PASSWORD \
        NAME=shelljob STAGING_PORTS="18180 18181" PRODUCTION_PORTS="18190 18191" \
        RUN_ARGS="shop-serve 127.0.0.1:{port}" HEALTH_PATH=/healthz PAGE_PATH=/revision PAGE_EXPECT="{revision}" \
            bash tests/bench/src/shell-job.sh || return 1
        python3 -c "import sys, time; print(f'{time.time() - float(sys.argv[1]):.2f}')" "$t0"
    )
    if "${qs[@]}" --example shop >>"$qs_log" 2>&1; then
        times=() shell_times=()
        for _ in 1 2 3; do
            shell_times+=("$(shop_shell_round 2>>"$qs_log")") || { rc=1; break; }
            t0=$(date +%s.%N)
            out=$("${qs[@]}" commit 2>&1) || { echo "$out" >>"$qs_log"; rc=1; break; }
            echo "$out" >>"$qs_log"
            rev=$(sed -n 's/.*committed r\([0-9]*\) to SVN.*/\1/p' <<<"$out" | head -n 1)
            times+=("$(FERRY_SERVER=http://127.0.0.1:8491 FERRY_TOKEN=$(<"$qs_state/operator-token") \
                target/release/ferry runs shop --output json | python3 -c '
import datetime, json, sys
t0, rev = float(sys.argv[1]), sys.argv[2]
run = next(r for r in json.load(sys.stdin)["runs"] if r.get("revision") == rev)
end = next(e["time"] for e in run["events"] if e["kind"] == "test.passed" and e.get("environment") == "production")
end = datetime.datetime.fromisoformat(end[:26].rstrip("Z") + "+00:00").timestamp()
print(f"{end - t0:.2f}")' "$t0" "$rev")")
        done
        if ((${#times[@]} == 3 && ${#shell_times[@]} == 3)); then
            median=$(printf '%s\n' "${times[@]}" | sort -n | sed -n 2p)
            shell_median=$(printf '%s\n' "${shell_times[@]}" | sort -n | sed -n 2p)
            echo "bench: shop_commit_to_prod_warm_s = $median s (rounds ${times[*]})"
            echo "bench: shop_commit_to_prod_shell_s = $shell_median s (rounds ${shell_times[*]})"
            echo "bench: shop_commit_to_prod_over_shell = $(python3 -c "print(f'{$median / $shell_median:.2f}')")"
        fi
    else
        echo "bench: the shop quickstart failed: see $qs_log" >&2
        rc=1
    fi
    "${qs[@]}" stop >>"$qs_log" 2>&1 || true
fi
# The chaos suite (its own driver, tests/chaos): BENCH_ONLY=chaos, or tests/chaos.sh.
if [[ ",${BENCH_ONLY:-}," == *,chaos,* ]]; then
    CARGO_TERM_COLOR=never cargo build -q --workspace --bins && target/debug/ferry-chaos || rc=1
fi
set -e
exit "$rc"
