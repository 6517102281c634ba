# shellcheck shell=bash
# The compose host: a machine of its own for Ferry running as containers (sourced by
# components.sh; uses its helpers).
#
#   ferry_start_compose_host   a network namespace ($FERRY_TEST_COMPOSE_NAME, default ferry-ch)
#                              reached at $NET.2 from here over a veth ($NET.1 here; $NET is
#                              FERRY_TEST_COMPOSE_NET, default 10.204.0), holding
#                              - the engine: a Docker daemon with bridge networking, where
#                                docker-compose runs Ferry's stack and Ferry builds;
#                              - two deploy hosts (staging, production): Docker daemons with
#                                host networking, API on tcp://$NET.2:2376 and :2377 behind
#                                TLS (client certificate in $FERRY_TEST_COMPOSE_TLS_DIR), as a
#                                remote Docker host is;
#                              - svnserve on $NET.2:3690 over the suite's repositories
#                                ($FERRY_TEST_SVN_ROOT: start svnserve first);
#                              - git daemon on $NET.2:9418 (read-only) over
#                                $FERRY_TEST_COMPOSE_GIT_ROOT, for ops config repos.
#                              Nothing in the namespace has a route out of it: the stack
#                              reaches only what is in there.
#
# Exports FERRY_TEST_COMPOSE_NETNS (for nsenter --net=...), FERRY_TEST_COMPOSE_ADDR ($NET.2),
# FERRY_TEST_COMPOSE_DOCKER_HOST (the engine's socket), FERRY_TEST_COMPOSE_STAGING_HOST and
# FERRY_TEST_COMPOSE_PRODUCTION_HOST (the deploy hosts' sockets, for the tests' own looks),
# FERRY_TEST_COMPOSE_SVN_URL.

ferry_start_compose_host() {
    _ferry_init || return 1
    local name=${FERRY_TEST_COMPOSE_NAME:-ferry-ch} net=${FERRY_TEST_COMPOSE_NET:-10.204.0}
    local d="$FERRY_TEST_STATE/compose-host" log="$FERRY_TEST_STATE/logs/compose-host.log"
    local sockdir t0 veth="$name-h" ns="/var/run/netns/$name"
    t0=$(_ferry_now_ms)
    sockdir=$(_ferry_docker_sockdir) || return 1
    [[ -n "${FERRY_TEST_SVN_ROOT:-}" ]] ||
        { _ferry_fail "cannot start compose-host" "$log" "start svnserve first (its repositories are served here too)"; return 1; }
    ((${#veth} <= 15)) ||
        { _ferry_fail "cannot start compose-host" "$log" "FERRY_TEST_COMPOSE_NAME '$name' is too long for interface names"; return 1; }
    mkdir -p "$d"
    printf 'name=%s\nnet=%s\nsockdir=%s\n' "$name" "$net" "$sockdir" >"$d/made"
    if [[ ! -e "$ns" ]]; then
        {
            ip netns add "$name" &&
                ip link add "$veth" type veth peer name eth0 netns "$name" &&
                ip addr add "$net.1/30" dev "$veth" && ip link set "$veth" up &&
                nsenter --net="$ns" sh -c "
                    ip link set lo up && ip addr add $net.2/30 dev eth0 && ip link set eth0 up &&
                    ip link add ferry-br type bridge && ip addr add 10.235.0.1/24 dev ferry-br &&
                    ip link set ferry-br up"
        } >>"$log" 2>&1 || { _ferry_fail "cannot start compose-host" "$log" "creating the namespace failed"; return 1; }
    fi
    # The engine: bridge networking and iptables, both inside the namespace. Its default bridge
    # is one made here, not docker0: a daemon started with --bridge=none (the deploy hosts)
    # deletes any docker0 it finds in its namespace.
    _ferry_compose_dockerd engine "$sockdir/compose-engine" \
        --bridge ferry-br --default-address-pool base=10.236.0.0/16,size=24 || return 1
    # Deploy hosts: host networking, like the suite's other Docker hosts, and their API on TCP
    # behind TLS with client certificates, as a remote host's should be (dockerd also delays
    # its start by 15 s on a TCP socket without TLS).
    _ferry_docker_tls_certs "$d/tls" "$net.2" ||
        { _ferry_fail "cannot start compose-host" "$log" "openssl could not make the TLS certificates"; return 1; }
    local tls=(--tlsverify --tlscacert "$d/tls/server/ca.pem" --tlscert "$d/tls/server/cert.pem"
        --tlskey "$d/tls/server/key.pem" --bridge=none --iptables=false --ip6tables=false)
    local staging production
    _ferry_compose_dockerd staging "$sockdir/compose-staging" --host "tcp://$net.2:2376" "${tls[@]}" &
    staging=$!
    _ferry_compose_dockerd production "$sockdir/compose-production" --host "tcp://$net.2:2377" "${tls[@]}" &
    production=$!
    wait "$staging" && wait "$production" || return 1
    local pidf="$d/svnserve.pid" pid
    pid=$(_ferry_our_pid "$pidf" "$FERRY_TEST_SVN_ROOT")
    if [[ -z "$pid" ]]; then
        nsenter --net="$ns" svnserve -d -r "$FERRY_TEST_SVN_ROOT" --listen-host "$net.2" \
            --listen-port 3690 --pid-file "$pidf" --log-file "$log" </dev/null >>"$log" 2>&1 9>&- ||
            { _ferry_fail "cannot start compose-host" "$log" "svnserve -d failed"; return 1; }
    fi
    # The ops config repositories, read-only over git:// (as from a GitLab on another machine).
    local git_root="$d/git"
    mkdir -p "$git_root"
    pid=$(_ferry_our_pid "$d/git-daemon.pid" "$git_root")
    if [[ -z "$pid" ]]; then
        nsenter --net="$ns" git daemon --detach --reuseaddr --export-all --base-path="$git_root" \
            --listen="$net.2" --port=9418 --pid-file="$d/git-daemon.pid" "$git_root" \
            </dev/null >>"$log" 2>&1 9>&- ||
            { _ferry_fail "cannot start compose-host" "$log" "git daemon failed"; return 1; }
    fi
    _ferry_export FERRY_TEST_COMPOSE_NETNS "$ns"
    _ferry_export FERRY_TEST_COMPOSE_GIT_ROOT "$git_root"
    _ferry_export FERRY_TEST_COMPOSE_GIT_URL "git://$net.2:9418"
    _ferry_export FERRY_TEST_COMPOSE_ADDR "$net.2"
    _ferry_export FERRY_TEST_COMPOSE_DOCKER_HOST "unix://$sockdir/compose-engine.sock"
    _ferry_export FERRY_TEST_COMPOSE_STAGING_HOST "unix://$sockdir/compose-staging.sock"
    _ferry_export FERRY_TEST_COMPOSE_PRODUCTION_HOST "unix://$sockdir/compose-production.sock"
    _ferry_export FERRY_TEST_COMPOSE_SVN_URL "svn://$net.2:3690"
    _ferry_export FERRY_TEST_COMPOSE_TLS_DIR "$d/tls/client"
    _ferry_started compose-host "$t0"
}

# _ferry_compose_dockerd ROLE PATH ARGS...: a Docker daemon in the compose namespace with its
# data under the state dir, its socket at PATH.sock and its exec root at PATH.exec.
_ferry_compose_dockerd() {
    local role=$1 path=$2 d="$FERRY_TEST_STATE/compose-host/$1"
    local log="$FERRY_TEST_STATE/logs/compose-$1.log" pid
    shift 2
    mkdir -p "$d/data" "$path.exec"
    pid=$(_ferry_our_pid "$d/pid" "$d/pid")
    if [[ -z "$pid" ]]; then
        pid=$(_ferry_spawn "$d/launch.pid" "$log" nsenter --net="/var/run/netns/${FERRY_TEST_COMPOSE_NAME:-ferry-ch}" \
            dockerd --data-root "$d/data" --exec-root "$path.exec" --pidfile "$d/pid" \
            --host "unix://$path.sock" --containerd-namespace "ferry-compose-$role" \
            --containerd-plugins-namespace "ferry-compose-$role-plugins" "$@") ||
            { _ferry_fail "cannot start compose-host" "$log" "could not launch the $role daemon"; return 1; }
    fi
    local deadline=$((SECONDS + 60))
    until docker -H "unix://$path.sock" version >/dev/null 2>&1; do
        if ! kill -0 "$pid" 2>/dev/null && [[ ! -s "$d/pid" ]]; then
            _ferry_fail "cannot start compose-host" "$log" "the $role daemon exited"
            return 1
        fi
        ((SECONDS < deadline)) ||
            { _ferry_fail "cannot start compose-host" "$log" "the $role daemon did not answer within 60 s"; return 1; }
        sleep 0.2
    done
}

_ferry_stop_compose_host() {
    local d="$FERRY_TEST_STATE/compose-host" name sockdir role pid i comm m
    [[ -s "$d/made" ]] || return 0
    name=$(sed -n 's/^name=//p' "$d/made")
    sockdir=$(sed -n 's/^sockdir=//p' "$d/made")
    pid=$(_ferry_our_pid "$d/svnserve.pid" "${FERRY_TEST_SVN_ROOT:-$FERRY_TEST_STATE/svn}")
    [[ -n "$pid" ]] && _ferry_terminate "$pid" compose-svnserve 10
    pid=$(_ferry_our_pid "$d/git-daemon.pid" "$d/git")
    [[ -n "$pid" ]] && _ferry_terminate "$pid" compose-git-daemon 10
    # Containers first (docker-compose's stack and deployed apps), so that each daemon's
    # stop does not wait on them one by one.
    for role in engine staging production; do
        docker -H "unix://$sockdir/compose-$role.sock" ps -q 2>/dev/null |
            xargs -r docker -H "unix://$sockdir/compose-$role.sock" rm -f >/dev/null 2>&1
    done
    for role in engine staging production; do
        pid=$(_ferry_our_pid "$d/$role/pid" "$d/$role/pid")
        if [[ -n "$pid" ]]; then
            _ferry_log "stopping the compose host's $role daemon (pid $pid)"
            _ferry_terminate "$pid" "compose-$role" 30 &
        fi
    done
    wait
    # Leftover containerd and shims of these daemons (after a SIGKILL), by their exec roots.
    for i in /proc/[0-9]*; do
        pid=${i#/proc/}
        comm=$(cat "$i/comm" 2>/dev/null) || continue
        case "$comm" in containerd | containerd-shim* | dockerd) ;; *) continue ;; esac
        if tr '\0' ' ' <"$i/cmdline" 2>/dev/null | grep -qF "$sockdir/compose-"; then
            _ferry_terminate "$pid" "$comm" 10
        fi
    done
    while read -r m; do
        [[ -n "$m" ]] || continue
        umount "$m" || umount -l "$m"
    done < <(awk -v a="$d/" -v b="$sockdir/compose-" 'index($2, a) == 1 || index($2, b) == 1 {print $2}' \
        /proc/mounts | sort -r)
    [[ -n "$name" ]] && { ip netns del "$name" 2>/dev/null; ip link del "$name-h" 2>/dev/null; }
    rm -f "$d/made"
    _ferry_log "compose host stopped, namespace $name removed"
}
