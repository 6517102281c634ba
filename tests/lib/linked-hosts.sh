# Docker hosts that each have their own rate-limited network link, to measure what real,
# separate machines would see (sourced by tests/bench.sh after components.sh).
#
#   ferry_start_linked_hosts N RATE   N dockerds, each in its own network namespace
#                                     ferry-lN (10.200.0.1N/24) behind a veth shaped to RATE
#                                     (tc tbf, e.g. 100mbit) on bridge br-ferry (10.200.0.1),
#                                     plus a registry on 10.200.0.1:5001 serving the same
#                                     storage and users as the test registry.
#                                     Exports FERRY_BENCH_LINKED_HOSTS (unix:// URLs, comma-
#                                     separated) and FERRY_BENCH_LINKED_REGISTRY.
#   ferry_stop_linked_hosts           removes all of it (daemons, namespaces, bridge).
#
# Only these addresses, made here and removed again, are used: the project's own test hosts.

FERRY_LINKED_BRIDGE=br-ferry
FERRY_LINKED_NET=10.200.0

ferry_start_linked_hosts() {
    _ferry_init || return 1
    local n=$1 rate=$2 i t0 dir="$FERRY_TEST_STATE/linked" log="$FERRY_TEST_STATE/logs/linked.log" hosts=()
    t0=$(_ferry_now_ms)
    mkdir -p "$dir"
    command -v tc >/dev/null || { _ferry_fail "cannot set up linked hosts" "$log" "tc (iproute2) is missing"; return 1; }
    # Leftovers of a run that was killed before its clean-up: our own names only.
    local stale
    for stale in $(ip netns list 2>/dev/null | awk '/^ferry-l[0-9]+/ {print $1}'); do
        ip netns del "$stale" 2>/dev/null || true
    done
    ip link del "$FERRY_LINKED_BRIDGE" 2>/dev/null || true
    {
        ip link add "$FERRY_LINKED_BRIDGE" type bridge &&
            ip addr add "$FERRY_LINKED_NET.1/24" dev "$FERRY_LINKED_BRIDGE" &&
            ip link set "$FERRY_LINKED_BRIDGE" up
    } >>"$log" 2>&1 || { _ferry_fail "cannot create bridge $FERRY_LINKED_BRIDGE" "$log" "ip link failed"; return 1; }
    for ((i = 1; i <= n; i++)); do
        local ns="ferry-l$i" veth="vfl$i" d="$dir/l$i" sock="$dir/l$i.sock"
        mkdir -p "$d/data" "$d/exec"
        {
            ip netns add "$ns" &&
                ip link add "$veth" type veth peer name eth0 netns "$ns" &&
                ip link set "$veth" master "$FERRY_LINKED_BRIDGE" up &&
                ip netns exec "$ns" ip addr add "$FERRY_LINKED_NET.1$i/24" dev eth0 &&
                ip netns exec "$ns" ip link set eth0 up &&
                ip netns exec "$ns" ip link set lo up &&
                tc qdisc add dev "$veth" root tbf rate "$rate" burst 256kb latency 50ms
        } >>"$log" 2>&1 || { _ferry_fail "cannot create host $ns" "$log" "ip/tc failed"; return 1; }
        # nsenter, not `ip netns exec`: the latter remounts /sys and dockerd then fails.
        _ferry_spawn "$d/launch.pid" "$log" nsenter --net="/var/run/netns/$ns" dockerd \
            --data-root "$d/data" --exec-root "$d/exec" --pidfile "$d/pid" --host "unix://$sock" \
            --iptables=false --ip6tables=false --bridge=none \
            --insecure-registry "$FERRY_LINKED_NET.1:5001" \
            --containerd-namespace "ferry-l$i" --containerd-plugins-namespace "ferry-l$i-plugins" >/dev/null ||
            { _ferry_fail "cannot start dockerd in $ns" "$log" "launch failed"; return 1; }
        hosts+=("unix://$sock")
    done
    # The registry on the bridge: same storage and users as the loopback one.
    local reg="$FERRY_TEST_STATE/registry"
    sed -e "s|addr: 127.0.0.1:.*|addr: $FERRY_LINKED_NET.1:5001|" "$reg/config.yml" >"$dir/registry.yml"
    _ferry_spawn "$dir/registry.pid" "$log" docker-registry serve "$dir/registry.yml" >/dev/null ||
        { _ferry_fail "cannot start the linked registry" "$log" "launch failed"; return 1; }
    local deadline=$((SECONDS + 60))
    for h in "${hosts[@]}"; do
        until docker -H "$h" version >/dev/null 2>&1; do
            ((SECONDS < deadline)) || { _ferry_fail "linked dockerd $h did not answer" "$log" "timeout"; return 1; }
            sleep 0.2
        done
    done
    local IFS=,
    _ferry_export FERRY_BENCH_LINKED_HOSTS "${hosts[*]}"
    _ferry_export FERRY_BENCH_LINKED_REGISTRY "$FERRY_LINKED_NET.1:5001"
    _ferry_started "linked hosts x$n at $rate" "$t0"
}

ferry_stop_linked_hosts() {
    local dir="$FERRY_TEST_STATE/linked" f pid m
    [[ -d "$dir" ]] || return 0
    for f in "$dir"/l*/pid "$dir/registry.pid"; do
        [[ -e "$f" ]] || continue
        pid=$(tr -dc 0-9 <"$f")
        [[ -n "$pid" ]] && kill "$pid" 2>/dev/null || true
    done
    sleep 2
    for f in "$dir"/l*/pid "$dir"/l*/launch.pid; do
        [[ -e "$f" ]] || continue
        pid=$(tr -dc 0-9 <"$f")
        [[ -n "$pid" ]] && kill -KILL "$pid" 2>/dev/null || true
    done
    while read -r m; do
        [[ -n "$m" ]] && { umount "$m" 2>/dev/null || umount -l "$m" || true; }
    done < <(awk -v a="$dir/" 'index($2, a) == 1 {print $2}' /proc/mounts | sort -r)
    local i
    for i in $(ip netns list 2>/dev/null | awk '/^ferry-l[0-9]+/ {print $1}'); do
        ip netns del "$i" 2>/dev/null || true
    done
    ip link del "$FERRY_LINKED_BRIDGE" 2>/dev/null || true
    return 0
}
