# shellcheck shell=bash
# Real components for Ferry's tests: RabbitMQ, Docker daemons, a registry v2, svnserve, PostgreSQL,
# headless Chromium behind chromedriver.
#
# Source this file, then call the functions below. Each function is idempotent (a component that is
# already running from the same $FERRY_TEST_STATE is reused), listens on loopback only, logs to
# $FERRY_TEST_STATE/logs/<component>.log, and records what it exports in $FERRY_TEST_STATE/env
# (`source $FERRY_TEST_STATE/env` gives a shell the same variables).
#
#   ferry_install_missing        apt-get install the packages whose commands are missing
#   ferry_start_rabbitmq         private RabbitMQ node on 127.0.0.1:${FERRY_TEST_AMQP_PORT:-5672}
#   ferry_start_rabbitmq_cluster three clustered RabbitMQ nodes, each in its own network namespace
#                                on a bridge (10.201.0.11-13), that tests may kill and partition
#   ferry_stop_rabbitmq_cluster  stops it and removes its namespaces and bridge
#   ferry_start_dockerd N        N independent Docker daemons ("hosts")
#   ferry_start_registry         registry v2 with htpasswd auth on 127.0.0.1:${FERRY_TEST_REGISTRY_PORT:-5000}
#   ferry_start_svnserve         svnserve on 127.0.0.1:${FERRY_TEST_SVN_PORT:-3690}
#   ferry_start_postgres         private PostgreSQL 15 server on 127.0.0.1:${FERRY_TEST_POSTGRES_PORT:-5433}
#                                (role and database `ferry`; role may create databases)
#   ferry_start_dockerd_build    a build Docker daemon in its own network namespace behind NAT
#                                (what a production build host needs), plus a "dependency
#                                mirror" namespace the builds may reach
#   ferry_start_compose_host     a "machine" of its own (network namespace) for Ferry as
#                                containers: a bridge-networked engine for docker-compose,
#                                two deploy hosts, svnserve (compose-host.sh)
#   ferry_start_chromedriver     chromedriver (WebDriver for headless Chromium) on
#                                127.0.0.1:${FERRY_TEST_CHROMEDRIVER_PORT:-9515}
#   ferry_start_components C...  the above by name: rabbitmq rabbitmq-cluster dockerd[:N] registry
#                                svnserve postgres sshd dockerd-build compose-host chromedriver
#   ferry_stop_all               stop everything started under $FERRY_TEST_STATE (by PID files)
#
# Functions return non-zero (after printing the component's name and log tail) when a component
# cannot start; they never `exit`, so a caller's traps still run.

FERRY_TESTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
FERRY_RABBIT_NODE_SCRIPT="$FERRY_TESTS_DIR/support/rabbit-node.sh"
FERRY_SVN_REPO_SCRIPT="$FERRY_TESTS_DIR/support/svn-repo.sh"

# --- helpers -----------------------------------------------------------------------------------

# Creates the state directory (a fresh one if FERRY_TEST_STATE is unset) and its logs/ and pids/.
_ferry_init() {
    if [[ -z "${FERRY_TEST_STATE:-}" ]]; then
        FERRY_TEST_STATE=$(mktemp -d /tmp/ferry-test.XXXX) || return 1
    fi
    mkdir -p "$FERRY_TEST_STATE/logs" "$FERRY_TEST_STATE/pids" || return 1
    FERRY_TEST_STATE=$(cd "$FERRY_TEST_STATE" && pwd -P) || return 1
    _ferry_export FERRY_TEST_STATE "$FERRY_TEST_STATE"
}

# _ferry_export NAME VALUE: export it here and (re)write its line in $FERRY_TEST_STATE/env.
_ferry_export() {
    local name=$1 value=$2 env="$FERRY_TEST_STATE/env"
    export "$name=$value"
    touch "$env"
    {
        grep -v "^export $name=" "$env" || true
        if [[ "$value" =~ ^[A-Za-z0-9_./:@%,+=-]*$ ]]; then
            printf 'export %s=%s\n' "$name" "$value"
        else
            printf 'export %s=%q\n' "$name" "$value"
        fi
    } >"$env.tmp" && mv -f "$env.tmp" "$env"
}

_ferry_now_ms() { echo $(($(date +%s%N) / 1000000)); }

# _ferry_started NAME START_MS: the one line each start prints.
_ferry_started() {
    local ms=$(($(_ferry_now_ms) - $2))
    printf 'started %s in %d.%d s\n' "$1" $((ms / 1000)) $((ms % 1000 / 100))
}

# _ferry_fail WHAT LOGFILE MESSAGE: clear error naming the component, with its log tail.
_ferry_fail() {
    {
        echo "ferry-tests: ERROR: $1: $3"
        if [[ -s "$2" ]]; then
            echo "----- last lines of $2 -----"
            tail -n 40 "$2"
            echo "-----"
        fi
    } >&2
    return 1
}

_ferry_log() { printf '%s %s\n' "$(date '+%H:%M:%S')" "$*"; }

# Who listens on TCP port $1 (any address); empty when the port is free.
_ferry_port_owner() {
    ss -Hltnp "sport = :$1" 2>/dev/null | awk '{print $4, $6}' | head -n 3
}

# _ferry_our_pid PIDFILE NEEDLE: the PID in PIDFILE if that process is alive and its command line
# contains NEEDLE (one of our own state paths): proof that we started it. Empty otherwise.
_ferry_our_pid() {
    local pid
    [[ -s "$1" ]] || return 0
    pid=$(tr -dc 0-9 <"$1")
    [[ -n "$pid" && -r "/proc/$pid/cmdline" ]] || return 0
    if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$2"; then
        echo "$pid"
    fi
}

# _ferry_terminate PID NAME [SECONDS]: SIGTERM, wait, then SIGKILL. Only ever called on a PID that
# _ferry_our_pid vouched for.
_ferry_terminate() {
    local pid=$1 name=$2 wait=${3:-20} i
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < wait * 10; i++)); do
        [[ -d /proc/$pid ]] || return 0
        sleep 0.1
    done
    _ferry_log "$name (pid $pid) still alive after ${wait}s; SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        [[ -d /proc/$pid ]] || return 0
        sleep 0.1
    done
}

# _ferry_spawn PIDFILE LOG CMD...: run CMD in its own session (so Ctrl-C reaches the tests, not
# the daemons, and --keep can leave them running), detached from our stdin/stdout; PIDFILE gets
# its PID. Prints the PID.
_ferry_spawn() {
    local pidf=$1 log=$2 i
    shift 2
    rm -f "$pidf"
    setsid -f bash -c 'echo $$ >"$0.tmp" && mv -f "$0.tmp" "$0" && exec "$@"' "$pidf" "$@" \
        </dev/null >>"$log" 2>&1 9>&-
    for ((i = 0; i < 100; i++)); do
        [[ -s "$pidf" ]] && { cat "$pidf"; return 0; }
        sleep 0.05
    done
    return 1
}

# A fresh random password (hex, safe in URLs, YAML and svn passwd files).
_ferry_random_password() { od -An -N12 -tx1 /dev/urandom | tr -d ' \n'; }

# --- install -----------------------------------------------------------------------------------

ferry_install_missing() {
    _ferry_init || return 1
    local log="$FERRY_TEST_STATE/logs/install.log" pkgs=() p
    _ferry_missing_packages pkgs
    if ((${#pkgs[@]})); then
        _ferry_log "installing missing packages: ${pkgs[*]}" | tee -a "$log" >&2
        if ((EUID != 0)); then
            echo "ferry-tests: ERROR: missing packages (${pkgs[*]}) and not root: install them first" >&2
            return 1
        fi
        # Package installs must not start system services (a system RabbitMQ on 0.0.0.0:5672, a
        # system dockerd): block them unless the machine already has a policy in place.
        local own_policy=0
        if [[ ! -e /usr/sbin/policy-rc.d ]]; then
            printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && own_policy=1
        fi
        local ok=1
        if [[ -z "${_FERRY_APT_UPDATED:-}" ]]; then
            DEBIAN_FRONTEND=noninteractive apt-get update -q >>"$log" 2>&1 && _FERRY_APT_UPDATED=1 || ok=0
        fi
        if ((ok)); then
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${pkgs[@]}" \
                >>"$log" 2>&1 || ok=0
        fi
        ((own_policy)) && rm -f /usr/sbin/policy-rc.d
        ((ok)) || { _ferry_fail "cannot install packages (${pkgs[*]})" "$log" "apt-get failed"; return 1; }
        pkgs=()
        _ferry_missing_packages pkgs
        if ((${#pkgs[@]})); then
            _ferry_fail "cannot install packages" "$log" "still missing after apt-get install: ${pkgs[*]}"
            return 1
        fi
    fi
    if ! cargo nextest --version >/dev/null 2>&1; then
        _ferry_log "installing cargo-nextest" | tee -a "$log" >&2
        cargo install cargo-nextest --locked >>"$log" 2>&1 ||
            { _ferry_fail "cannot install cargo-nextest" "$log" "cargo install cargo-nextest failed"; return 1; }
    fi
    # Debian's python3-aiosmtpd is importable by /usr/bin/python3 only, not necessarily by the
    # first python3 on PATH (pyenv): tests that need an SMTP sink use this interpreter.
    for p in python3 /usr/bin/python3; do
        if "$p" -c 'import aiosmtpd' >/dev/null 2>&1; then
            _ferry_export FERRY_TEST_PYTHON "$(command -v "$p")"
            break
        fi
    done
}

# _ferry_missing_packages ARRAY_NAME: appends the Debian packages whose commands are missing.
_ferry_missing_packages() {
    local -n _out=$1
    local -A want=()
    local cmd pkg
    for cmd in rabbitmq-server:rabbitmq-server dockerd:docker.io docker:docker.io \
        docker-registry:docker-registry htpasswd:apache2-utils svnserve:subversion svn:subversion \
        svnadmin:subversion curl:curl ss:iproute2 flock:util-linux setsid:util-linux openssl:openssl \
        sshd:openssh-server ssh:openssh-client ssh-keygen:openssh-client iptables:iptables \
        nsenter:util-linux ip:iproute2 mmdebstrap:mmdebstrap docker-compose:docker-compose \
        strip:binutils git:git haproxy:haproxy socat:socat prometheus:prometheus \
        chromium:chromium chromedriver:chromium-driver; do
        pkg=${cmd#*:}
        cmd=${cmd%%:*}
        command -v "$cmd" >/dev/null 2>&1 || [[ -x "/usr/sbin/$cmd" ]] || want[$pkg]=1
    done
    [[ -x /usr/lib/rabbitmq/bin/rabbitmq-server && -x /usr/lib/rabbitmq/bin/rabbitmqctl ]] ||
        want[rabbitmq-server]=1
    [[ -x /usr/lib/postgresql/15/bin/postgres ]] || want[postgresql]=1
    # A CJK font: the dashboard's Chinese pages and their screenshots render as boxes without one.
    [[ -e /usr/share/fonts/truetype/wqy/wqy-zenhei.ttc ]] || want[fonts-wqy-zenhei]=1
    # busybox must be the static one (it is copied into FROM-scratch test images).
    if [[ ! -x /bin/busybox ]] || ldd /bin/busybox >/dev/null 2>&1; then want[busybox-static]=1; fi
    python3 -c 'import aiosmtpd' >/dev/null 2>&1 || /usr/bin/python3 -c 'import aiosmtpd' >/dev/null 2>&1 ||
        want[python3-aiosmtpd]=1
    _out+=("${!want[@]}")
}

# --- RabbitMQ ----------------------------------------------------------------------------------

ferry_start_rabbitmq() {
    _ferry_init || return 1
    local port=${FERRY_TEST_AMQP_PORT:-5672}
    # The node is named after its directory; FERRY_TEST_RABBIT_NAME lets two harnesses run
    # side by side on one machine (epmd knows each name once).
    local name=${FERRY_TEST_RABBIT_NAME:-ferrytest}
    local dir="$FERRY_TEST_STATE/rabbit/$name"
    local log="$FERRY_TEST_STATE/logs/rabbitmq.log" t0
    t0=$(_ferry_now_ms)
    export ERL_EPMD_ADDRESS=127.0.0.1
    mkdir -p "$dir/log"
    ln -sfn "$dir/log/$name@localhost.log" "$FERRY_TEST_STATE/logs/rabbitmq-node.log"
    _ferry_log "rabbit-node.sh start $dir $port" >>"$log"
    if ! "$FERRY_RABBIT_NODE_SCRIPT" start "$dir" "$port" >>"$log" 2>&1; then
        _ferry_fail "cannot start rabbitmq" "$log" "private node $name@localhost did not come up on 127.0.0.1:$port"
        return 1
    fi
    _ferry_export ERL_EPMD_ADDRESS 127.0.0.1
    _ferry_export FERRY_TEST_AMQP_PORT "$port"
    _ferry_export FERRY_TEST_AMQP_URL "amqp://guest:guest@127.0.0.1:$port/%2f"
    _ferry_export FERRY_TEST_RABBIT_NODE_SCRIPT "$FERRY_RABBIT_NODE_SCRIPT"
    _ferry_export FERRY_TEST_RABBIT_DIR "$dir"
    _ferry_export FERRY_TEST_RABBIT_NODE "$name@localhost"
    _ferry_started rabbitmq "$t0"
}

# --- RabbitMQ cluster: three nodes, each in a network namespace of its own ----------------------

# Three clustered RabbitMQ nodes that tests may kill, stop, restart and cut off. Node N
# (1..3) is rabbitN@$NET.1N (long names) in network namespace $NAME$N, whose veth has its
# host end $NAME$N-h on bridge $NAME-br ($NET.1/24 here): this machine's processes reach
# every node's AMQP port 5672, and `ip link set $NAME$N-h down` cuts node N off from the
# other nodes and from its clients alike (a partition). NAME is FERRY_TEST_CLUSTER_NAME
# (default ferry-rq), NET is FERRY_TEST_CLUSTER_NET (default 10.201.0); two harnesses side by
# side need different ones of both. The nodes form the cluster through classic_config peer
# discovery, handle partitions with pause_minority, tick every 10 s (net_ticktime), share one
# Erlang cookie; each namespace runs its own epmd. The only user is `ferry` (administrator,
# random password); the default queue type is left alone.
# Everything a node and its CLI need (cookie HOME, node name, config paths, Erlang arguments)
# is in $FERRY_TEST_CLUSTER_DIR/rabbitN/rabbitmq-env.conf, so that
#   nsenter --net=/var/run/netns/$NAME$N env RABBITMQ_CONF_ENV_FILE=<that file> \
#       /usr/lib/rabbitmq/bin/rabbitmqctl -n rabbitN@$NET.1N <command>
# talks to node N, and `.../rabbitmq-server -detached` the same way starts it again (on its
# data: it rejoins). That directory also holds rabbit.pid (the node's beam), epmd.pid, log/.
# The testkit's `cluster` module drives all of this for tests (and may add DROP rules to a
# node namespace's own iptables, to cut it off from its peers only: they go with the namespace).
# Exports FERRY_TEST_CLUSTER_AMQP_URLS, FERRY_TEST_CLUSTER_NODES, FERRY_TEST_CLUSTER_NETNS
# (paths for nsenter --net=), FERRY_TEST_CLUSTER_VETHS (all comma-separated, in node order),
# FERRY_TEST_CLUSTER_DIR, FERRY_TEST_CLUSTER_BRIDGE, FERRY_TEST_CLUSTER_USER and
# FERRY_TEST_CLUSTER_PASSWORD.
# A cluster of this state directory whose three nodes all run is reused. Anything else left of
# ours (a harness killed midway, a node a test left down) is removed and the cluster made anew,
# empty.

FERRY_CLUSTER_SIZE=3
FERRY_RMQ_BIN=/usr/lib/rabbitmq/bin

ferry_start_rabbitmq_cluster() {
    _ferry_init || return 1
    local name=${FERRY_TEST_CLUSTER_NAME:-ferry-rq} net=${FERRY_TEST_CLUSTER_NET:-10.201.0}
    local d="$FERRY_TEST_STATE/rabbitmq-cluster" log="$FERRY_TEST_STATE/logs/rabbitmq-cluster.log"
    local n=$FERRY_CLUSTER_SIZE br i c t0 made pw urls=() nodes=() nss=() veths=() classic=""
    t0=$(_ferry_now_ms)
    br="$name-br"
    for c in ip nsenter iptables epmd setsid; do
        command -v "$c" >/dev/null ||
            { _ferry_fail "cannot start rabbitmq-cluster" "$log" "$c is missing (ferry_install_missing installs it)"; return 1; }
    done
    ((${#name} <= 11)) ||
        { _ferry_fail "cannot start rabbitmq-cluster" "$log" "FERRY_TEST_CLUSTER_NAME '$name' is too long for interface names"; return 1; }
    mkdir -p "$d"
    for ((i = 1; i <= n; i++)); do
        nodes+=("rabbit$i@$net.1$i")
        nss+=("/var/run/netns/$name$i")
        veths+=("$name$i-h")
        urls+=("amqp://ferry:@PASSWORD@@$net.1$i:5672/%2f")
        classic+="cluster_formation.classic_config.nodes.$i = rabbit$i@$net.1$i"$'\n'
    done
    made=$(printf 'name=%s\nnet=%s' "$name" "$net")
    if [[ -s "$d/made" && "$(<"$d/made")" == "$made" ]] && _ferry_cluster_running "$d" "$name"; then
        _ferry_log "rabbitmq-cluster $name already running: reused" >>"$log"
    else
        # Whatever is left of ours (a harness killed before its clean-up) goes first.
        _ferry_cluster_down "$name" "$d" >>"$log" 2>&1
        echo "$made" >"$d/made" # recorded for the stop: what was made, so that only that is removed
        rm -rf --one-file-system "${d:?}/home" "${d:?}"/rabbit[0-9]*
        mkdir -p "$d/home"
        _ferry_random_password >"$d/password"
        # The cookie: the nodes' and their CLIs' HOME.
        (umask 077 && _ferry_random_password >"$d/home/.erlang.cookie") && chmod 400 "$d/home/.erlang.cookie"
        {
            ip link add "$br" type bridge && ip addr add "$net.1/24" dev "$br" && ip link set "$br" up &&
                # Bridged frames pass this machine's FORWARD chain when br_netfilter is loaded:
                # node-to-node traffic must not depend on its policy.
                iptables -w -I FORWARD -i "$br" -o "$br" -m comment --comment "ferry-test:$name" -j ACCEPT
        } >>"$log" 2>&1 || { _ferry_fail "cannot start rabbitmq-cluster" "$log" "creating bridge $br failed"; return 1; }
        for ((i = 1; i <= n; i++)); do
            {
                ip netns add "$name$i" &&
                    ip link add "$name$i-h" type veth peer name eth0 netns "$name$i" &&
                    ip link set "$name$i-h" master "$br" up &&
                    nsenter --net="/var/run/netns/$name$i" sh -c "
                        ip link set lo up && ip addr add $net.1$i/24 dev eth0 && ip link set eth0 up"
            } >>"$log" 2>&1 || { _ferry_fail "cannot start rabbitmq-cluster" "$log" "creating namespace $name$i failed"; return 1; }
            _ferry_cluster_node_files "$d/rabbit$i" "$d/home" "rabbit$i@$net.1$i" "$(<"$d/password")" "$classic" ||
                { _ferry_fail "cannot start rabbitmq-cluster" "$log" "writing node $i's files failed"; return 1; }
            # Its own epmd (on all of the namespace's addresses), started here so that we know its PID.
            _ferry_spawn "$d/rabbit$i/epmd.pid" "$log" nsenter --net="/var/run/netns/$name$i" \
                env -u ERL_EPMD_ADDRESS -u ERL_EPMD_PORT "FERRY_TEST_CLUSTER_NODE_DIR=$d/rabbit$i" epmd >/dev/null ||
                { _ferry_fail "cannot start rabbitmq-cluster" "$log" "could not launch epmd in $name$i"; return 1; }
        done
        for ((i = 1; i <= n; i++)); do
            _ferry_cluster_epmd_listens "$name$i" ||
                { _ferry_fail "cannot start rabbitmq-cluster" "$log" "epmd in $name$i does not listen"; return 1; }
        done
        # The first node alone, then the others join it: started together, two blank nodes
        # that do not see each other yet would each form a cluster of their own.
        _ferry_cluster_boot "$d" "$name" 1 >>"$log" 2>&1 ||
            { _ferry_fail "cannot start rabbitmq-cluster" "$d/rabbit1/log/rabbit1@$net.11.log" "node 1 did not come up"; return 1; }
        local pids=() failed=0
        for ((i = 2; i <= n; i++)); do
            _ferry_cluster_boot "$d" "$name" "$i" >>"$log" 2>&1 &
            pids+=($!)
        done
        for i in "${pids[@]}"; do wait "$i" || failed=1; done
        if ((failed)) || ! _ferry_cluster_ctl "$d" "$name" 1 60 await_online_nodes "$n" --timeout 60 >>"$log" 2>&1; then
            _ferry_fail "cannot start rabbitmq-cluster" "$log" "the nodes did not form one cluster of $n (node logs: $d/rabbit*/log/)"
            return 1
        fi
    fi
    pw=$(<"$d/password")
    local IFS=,
    _ferry_export FERRY_TEST_CLUSTER_AMQP_URLS "${urls[*]//@PASSWORD@/$pw}"
    _ferry_export FERRY_TEST_CLUSTER_USER ferry
    _ferry_export FERRY_TEST_CLUSTER_PASSWORD "$pw"
    _ferry_export FERRY_TEST_CLUSTER_NODES "${nodes[*]}"
    _ferry_export FERRY_TEST_CLUSTER_NETNS "${nss[*]}"
    _ferry_export FERRY_TEST_CLUSTER_VETHS "${veths[*]}"
    _ferry_export FERRY_TEST_CLUSTER_BRIDGE "$br"
    _ferry_export FERRY_TEST_CLUSTER_DIR "$d"
    _ferry_started "rabbitmq-cluster x$n" "$t0"
}

# _ferry_cluster_node_files NODE_DIR HOME NODE PASSWORD CLASSIC_CONFIG_LINES: a node's
# configuration, and the environment file its server and CLI read (RabbitMQ's own
# RABBITMQ_CONF_ENV_FILE, sourced by sh with `set -a`).
_ferry_cluster_node_files() {
    local nd=$1 home=$2 node=$3 pw=$4 classic=$5 v
    mkdir -p "$nd/log" "$nd/mnesia" || return 1
    cat >"$nd/rabbitmq.conf" <<CONF || return 1
# Written by tests/lib/components.sh: node $node of Ferry's test cluster
listeners.tcp.default = 5672
default_user = ferry
default_pass = $pw
default_user_tags.administrator = true
default_permissions.configure = .*
default_permissions.read = .*
default_permissions.write = .*
cluster_formation.peer_discovery_backend = classic_config
${classic}
# What Ferry ships for production nodes (deploy/rabbitmq/rabbitmq.conf): consumer_timeout,
# cluster_partition_handling = pause_minority.
$(grep -v '^#' "$FERRY_TESTS_DIR/../deploy/rabbitmq/rabbitmq.conf")
log.file.level = info
log.console = false
CONF
    echo '[].' >"$nd/enabled_plugins" # no plugins (no management UI): a faster boot
    {
        echo "# Written by tests/lib/components.sh: node $node of Ferry's test cluster, for"
        echo "# rabbitmq-server and rabbitmqctl (RABBITMQ_CONF_ENV_FILE) run in the node's namespace."
        for v in "HOME=$home" "FERRY_TEST_CLUSTER_NODE_DIR=$nd" "RABBITMQ_NODENAME=$node" \
            RABBITMQ_USE_LONGNAME=true "RABBITMQ_CONFIG_FILE=$nd/rabbitmq.conf" \
            "RABBITMQ_ADVANCED_CONFIG_FILE=$nd/advanced.config" \
            "RABBITMQ_ENABLED_PLUGINS_FILE=$nd/enabled_plugins" "RABBITMQ_MNESIA_BASE=$nd/mnesia" \
            "RABBITMQ_LOG_BASE=$nd/log" "RABBITMQ_PID_FILE=$nd/rabbit.pid" \
            "ERL_CRASH_DUMP=$nd/log/erl_crash.dump" \
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-kernel net_ticktime 10" \
            "RABBITMQ_CTL_ERL_ARGS=-kernel net_ticktime 10" \
            RABBITMQ_CTL_DIST_PORT_MIN=0 RABBITMQ_CTL_DIST_PORT_MAX=0 LC_ALL=C.UTF-8 LANG=C.UTF-8; do
            printf 'export %s=%q\n' "${v%%=*}" "${v#*=}"
        done
        # The namespace's own epmd on its default port, whatever the caller's environment says.
        echo 'unset ERL_EPMD_ADDRESS ERL_EPMD_PORT'
    } >"$nd/rabbitmq-env.conf"
}

# _ferry_cluster_ctl DIR NAME I SECONDS ARGS...: rabbitmqctl against node I, from its namespace.
_ferry_cluster_ctl() {
    local d=$1 name=$2 i=$3 t=$4 node
    shift 4
    node=$(sed -n 's/^export RABBITMQ_NODENAME=//p' "$d/rabbit$i/rabbitmq-env.conf")
    timeout -k 5 "$t" nsenter --net="/var/run/netns/$name$i" \
        env "RABBITMQ_CONF_ENV_FILE=$d/rabbit$i/rabbitmq-env.conf" "$FERRY_RMQ_BIN/rabbitmqctl" -q -n "$node" "$@"
}

# _ferry_cluster_boot DIR NAME I: start node I and wait until it runs (joined, on a blank node).
_ferry_cluster_boot() {
    local d=$1 name=$2 i=$3 nd="$1/rabbit$3"
    _ferry_log "starting node $i in $name$i"
    # 9>&-: the node must not inherit (and hold) a caller's lock.
    setsid -w nsenter --net="/var/run/netns/$name$i" env "RABBITMQ_CONF_ENV_FILE=$nd/rabbitmq-env.conf" \
        "$FERRY_RMQ_BIN/rabbitmq-server" -detached </dev/null >>"$nd/log/start.out" 2>&1 9>&- || return 1
    _ferry_cluster_ctl "$d" "$name" "$i" 120 wait "$nd/rabbit.pid" --timeout 110
}

# True once epmd listens in namespace $1.
_ferry_cluster_epmd_listens() {
    local i
    for ((i = 0; i < 100; i++)); do
        [[ -n "$(nsenter --net="/var/run/netns/$1" ss -Hltn 'sport = :4369' 2>/dev/null)" ]] && return 0
        sleep 0.05
    done
    return 1
}

# _ferry_cluster_node_pid NODE_DIR: the PID of the node's beam if it is alive and ours.
_ferry_cluster_node_pid() {
    local pid
    [[ -s "$1/rabbit.pid" ]] || return 0
    pid=$(tr -dc 0-9 <"$1/rabbit.pid")
    [[ -n "$pid" ]] || return 0
    if tr '\0' '\n' 2>/dev/null <"/proc/$pid/environ" | grep -qxF "FERRY_TEST_CLUSTER_NODE_DIR=$1"; then
        echo "$pid"
    fi
}

# _ferry_cluster_running DIR NAME: true when every node's beam runs and node 1 sees all of them.
_ferry_cluster_running() {
    local d=$1 name=$2 i
    for ((i = 1; i <= FERRY_CLUSTER_SIZE; i++)); do
        [[ -n "$(_ferry_cluster_node_pid "$d/rabbit$i")" ]] || return 1
    done
    _ferry_cluster_ctl "$d" "$name" 1 20 await_online_nodes "$FERRY_CLUSTER_SIZE" --timeout 10 >/dev/null 2>&1
}

# _ferry_cluster_down NAME DIR [OWN]: the cluster's processes (found in its namespaces by the
# marker in their environment: nodes, epmds, CLIs), namespaces, veths, bridge and netfilter
# rule. With OWN, only processes of DIR's nodes are ended, and the network is left alone if
# another state directory's cluster lives in it now.
_ferry_cluster_down() {
    local name=$1 d=$2 own=${3:-} i ns pid rule marker pids=() foreign=0
    for ((i = 1; i <= FERRY_CLUSTER_SIZE; i++)); do
        ns="$name$i"
        [[ -e "/var/run/netns/$ns" ]] || continue
        for pid in $(ip netns pids "$ns" 2>/dev/null); do
            marker=$(tr '\0' '\n' 2>/dev/null <"/proc/$pid/environ" | grep '^FERRY_TEST_CLUSTER_NODE_DIR=') || continue
            if [[ -z "$own" || "$marker" == "FERRY_TEST_CLUSTER_NODE_DIR=$d/"* ]]; then
                pids+=("$pid")
            else
                foreign=1
            fi
        done
    done
    # The beams first, gracefully (an erl_child_setup ended before its beam crashes the beam).
    for pid in "${pids[@]}"; do
        [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == beam.smp ]] || continue
        _ferry_log "stopping rabbitmq-cluster node (pid $pid)"
        _ferry_terminate "$pid" "rabbitmq-cluster node" 20 &
    done
    wait
    for pid in "${pids[@]}"; do
        [[ -d "/proc/$pid" ]] || continue
        _ferry_log "stopping $(cat "/proc/$pid/comm" 2>/dev/null) (pid $pid) of rabbitmq-cluster"
        _ferry_terminate "$pid" "rabbitmq-cluster process" 5 &
    done
    wait
    if ((foreign)); then
        _ferry_log "namespaces $name* hold another state directory's cluster now: left in place"
        return 0
    fi
    for ((i = 1; i <= FERRY_CLUSTER_SIZE; i++)); do
        ip netns del "$name$i" 2>/dev/null
        ip link del "$name$i-h" 2>/dev/null
    done
    ip link del "$name-br" 2>/dev/null
    iptables -w -S FORWARD 2>/dev/null | grep -E -- "--comment \"?ferry-test:$name\"? " |
        while read -r rule; do
            eval "iptables -w -D ${rule#-A }"
        done
    _ferry_log "namespaces $name*, bridge $name-br and its rule removed"
    return 0
}

# Stops the cluster's nodes and epmds and removes its namespaces, veths, bridge and rule.
ferry_stop_rabbitmq_cluster() {
    local d="$FERRY_TEST_STATE/rabbitmq-cluster" name
    [[ -s "$d/made" ]] || return 0
    name=$(sed -n 's/^name=//p' "$d/made")
    [[ -n "$name" ]] && _ferry_cluster_down "$name" "$d" own
    rm -f "$d/made"
    _ferry_log "rabbitmq-cluster stopped"
}

# --- Docker daemons ----------------------------------------------------------------------------

# Directory holding the daemons' exec roots and sockets: short, for the 108-byte unix socket limit
# (dockerd's own containerd socket sits at <exec-root>/containerd/containerd.sock).
_ferry_docker_sockdir() {
    local d="$FERRY_TEST_STATE/docker"
    if ((${#d} > 60)); then
        if [[ -s "$d/short-root" ]]; then
            d=$(<"$d/short-root")
        else
            local short
            short=$(mktemp -d /tmp/ferry-dk.XXXX) || return 1
            mkdir -p "$d" && echo "$short" >"$d/short-root"
            d=$short
        fi
    fi
    echo "$d"
}

# Certificates for a Docker host behind TLS (dockerd --tlsverify): a CA, a server
# certificate for the address $2 (127.0.0.1) and a client certificate, in $1/{server,client}.
_ferry_docker_tls_certs() {
    local d=$1 ip=${2:-127.0.0.1}
    [[ -s "$d/client/key.pem" ]] && return 0
    mkdir -p "$d/server" "$d/client"
    (
        cd "$d" || exit 1
        openssl genrsa -out ca-key.pem 2048 &&
            openssl req -x509 -new -key ca-key.pem -days 3 -subj /CN=ferry-test-ca -out ca.pem &&
            openssl genrsa -out server/key.pem 2048 &&
            openssl req -new -key server/key.pem -subj "/CN=$ip" -out server.csr &&
            printf 'subjectAltName=IP:%s\nextendedKeyUsage=serverAuth\n' "$ip" >server.ext &&
            openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 3 \
                -extfile server.ext -out server/cert.pem &&
            openssl genrsa -out client/key.pem 2048 &&
            openssl req -new -key client/key.pem -subj /CN=ferry-test-client -out client.csr &&
            printf 'extendedKeyUsage=clientAuth\n' >client.ext &&
            openssl x509 -req -in client.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 3 \
                -extfile client.ext -out client/cert.pem &&
            cp ca.pem server/ca.pem && cp ca.pem client/ca.pem
    ) >/dev/null 2>&1
}

ferry_start_dockerd() {
    _ferry_init || return 1
    local n=${1:-1} i t0 base sockdir hosts=() pids=() tls_args=()
    [[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "ferry_start_dockerd: bad count '$n'" >&2; return 1; }
    t0=$(_ferry_now_ms)
    base="$FERRY_TEST_STATE/docker"
    sockdir=$(_ferry_docker_sockdir) || return 1
    for ((i = 1; i <= n; i++)); do
        local d="$base/h$i" x="$sockdir/h$i.exec" sock="$sockdir/h$i.sock"
        local log="$FERRY_TEST_STATE/logs/dockerd-h$i.log"
        mkdir -p "$d/data" "$x"
        hosts+=("unix://$sock")
        if [[ -n "$(_ferry_our_pid "$d/pid" "$d/pid")" ]]; then
            continue # already running: reuse
        fi
        _ferry_log "starting dockerd h$i" >>"$log"
        tls_args=()
        # FERRY_TEST_DOCKER_TLS=1: h1 also listens on TCP behind TLS (client certificates).
        if ((i == 1)) && [[ "${FERRY_TEST_DOCKER_TLS:-}" == 1 ]]; then
            local tls="$base/tls" tport=${FERRY_TEST_DOCKER_TLS_PORT:-2376}
            _ferry_docker_tls_certs "$tls" ||
                { _ferry_fail "cannot start dockerd h$i" "$log" "openssl could not make the TLS certificates"; return 1; }
            tls_args=(--host "tcp://127.0.0.1:$tport" --tlsverify --tlscacert "$tls/server/ca.pem"
                --tlscert "$tls/server/cert.pem" --tlskey "$tls/server/key.pem")
            _ferry_export FERRY_TEST_DOCKER_TLS_URL "tcp://127.0.0.1:$tport"
            _ferry_export FERRY_TEST_DOCKER_TLS_DIR "$tls/client"
        fi
        # Containers use host networking (--bridge=none). dockerd writes $d/pid itself once up.
        pids[i]=$(_ferry_spawn "$d/launch.pid" "$log" dockerd \
            --data-root "$d/data" --exec-root "$x" --pidfile "$d/pid" --host "unix://$sock" "${tls_args[@]}" \
            --iptables=false --ip6tables=false --bridge=none \
            --containerd-namespace "ferry-h$i" --containerd-plugins-namespace "ferry-h$i-plugins") ||
            { _ferry_fail "cannot start dockerd h$i" "$log" "could not launch dockerd"; return 1; }
    done
    local deadline=$((SECONDS + 60))
    for ((i = 1; i <= n; i++)); do
        local log="$FERRY_TEST_STATE/logs/dockerd-h$i.log"
        until docker -H "${hosts[i - 1]}" version >/dev/null 2>&1; do
            if [[ -n "${pids[i]:-}" ]] && ! kill -0 "${pids[i]}" 2>/dev/null; then
                _ferry_fail "cannot start dockerd h$i" "$log" "dockerd exited"
                return 1
            fi
            if ((SECONDS >= deadline)); then
                _ferry_fail "cannot start dockerd h$i" "$log" "no answer on ${hosts[i - 1]} within 60 s"
                return 1
            fi
            sleep 0.2
        done
    done
    local IFS=,
    _ferry_export FERRY_TEST_DOCKER_HOSTS "${hosts[*]}"
    _ferry_started "dockerd x$n" "$t0"
}

# --- registry v2 ---------------------------------------------------------------------------------

ferry_start_registry() {
    _ferry_init || return 1
    local port=${FERRY_TEST_REGISTRY_PORT:-5000} dir="$FERRY_TEST_STATE/registry"
    local log="$FERRY_TEST_STATE/logs/registry.log" pidf="$FERRY_TEST_STATE/pids/registry.pid"
    local cfg="$dir/config.yml" t0 pid owner code
    t0=$(_ferry_now_ms)
    mkdir -p "$dir/data"
    pid=$(_ferry_our_pid "$pidf" "$cfg")
    if [[ -z "$pid" ]]; then
        owner=$(_ferry_port_owner "$port")
        if [[ -n "$owner" ]]; then
            _ferry_fail "cannot start registry" "$log" "port $port is already in use: $owner (set FERRY_TEST_REGISTRY_PORT)"
            return 1
        fi
        [[ -s "$dir/password" ]] || _ferry_random_password >"$dir/password"
        htpasswd -Bbn ferry "$(<"$dir/password")" >"$dir/htpasswd" 2>>"$log" ||
            { _ferry_fail "cannot start registry" "$log" "htpasswd failed"; return 1; }
        cat >"$cfg" <<EOF
# Written by tests/lib/components.sh: Ferry's test registry (Harbor stand-in)
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
  secret: $(_ferry_random_password)
auth:
  htpasswd:
    realm: ferry
    path: $dir/htpasswd
EOF
        _ferry_log "starting registry on 127.0.0.1:$port" >>"$log"
        pid=$(_ferry_spawn "$pidf" "$log" docker-registry serve "$cfg") ||
            { _ferry_fail "cannot start registry" "$log" "could not launch docker-registry"; return 1; }
    fi
    local deadline=$((SECONDS + 30))
    while :; do
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$port/v2/" || true)
        [[ "$code" == 401 ]] && break
        if ! kill -0 "$pid" 2>/dev/null; then
            _ferry_fail "cannot start registry" "$log" "docker-registry exited"
            return 1
        fi
        if ((SECONDS >= deadline)); then
            _ferry_fail "cannot start registry" "$log" "http://127.0.0.1:$port/v2/ answered '$code', not 401, within 30 s"
            return 1
        fi
        sleep 0.2
    done
    _ferry_export FERRY_TEST_REGISTRY "127.0.0.1:$port"
    _ferry_export FERRY_TEST_REGISTRY_USER ferry
    _ferry_export FERRY_TEST_REGISTRY_PASSWORD "$(<"$dir/password")"
    _ferry_started registry "$t0"
}

# --- svnserve ------------------------------------------------------------------------------------

# True once svnserve on 127.0.0.1:$1 sends its greeting.
_ferry_svn_answers() {
    timeout 3 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" && [[ "$(head -c 9 <&3)" == "( success" ]]' \
        _ "$1" 2>/dev/null
}

ferry_start_svnserve() {
    _ferry_init || return 1
    local port=${FERRY_TEST_SVN_PORT:-3690} root="$FERRY_TEST_STATE/svn"
    local log="$FERRY_TEST_STATE/logs/svnserve.log" pidf="$FERRY_TEST_STATE/pids/svnserve.pid"
    local pwf="$FERRY_TEST_STATE/svn-password" t0 pid owner
    t0=$(_ferry_now_ms)
    mkdir -p "$root"
    [[ -s "$pwf" ]] || _ferry_random_password >"$pwf"
    # Exported before the start: svn-repo.sh (run by tests) reads them.
    _ferry_export FERRY_TEST_SVN_ROOT "$root"
    _ferry_export FERRY_TEST_SVN_URL "svn://127.0.0.1:$port"
    _ferry_export FERRY_TEST_SVN_USER ferry
    _ferry_export FERRY_TEST_SVN_PASSWORD "$(<"$pwf")"
    _ferry_export FERRY_TEST_SVN_REPO_SCRIPT "$FERRY_SVN_REPO_SCRIPT"
    pid=$(_ferry_our_pid "$pidf" "$root")
    if [[ -z "$pid" ]]; then
        owner=$(_ferry_port_owner "$port")
        if [[ -n "$owner" ]]; then
            _ferry_fail "cannot start svnserve" "$log" "port $port is already in use: $owner (set FERRY_TEST_SVN_PORT)"
            return 1
        fi
        rm -f "$pidf"
        _ferry_log "starting svnserve on 127.0.0.1:$port, root $root" >>"$log"
        # -d daemonizes and writes the daemon's PID to --pid-file.
        if ! svnserve -d -r "$root" --listen-host 127.0.0.1 --listen-port "$port" \
            --pid-file "$pidf" --log-file "$log" </dev/null >>"$log" 2>&1 9>&-; then
            _ferry_fail "cannot start svnserve" "$log" "svnserve -d failed"
            return 1
        fi
    fi
    local deadline=$((SECONDS + 20))
    until _ferry_svn_answers "$port"; do
        if ((SECONDS >= deadline)); then
            _ferry_fail "cannot start svnserve" "$log" "no greeting on 127.0.0.1:$port within 20 s"
            return 1
        fi
        sleep 0.1
    done
    _ferry_started svnserve "$t0"
}

# --- PostgreSQL 15 -------------------------------------------------------------------------------

# A private PostgreSQL 15 server on 127.0.0.1:${FERRY_TEST_POSTGRES_PORT:-5433} and on a unix
# socket in $FERRY_TEST_STATE/postgres-sock (a symlink to a short directory under /tmp when that
# path is too long for a socket), fsync off. It runs as user postgres (it refuses root) on the data
# directory $FERRY_TEST_STATE/postgres: superuser `postgres`, trusted on the unix socket,
# scram-sha-256 over TCP, UTF8, locale C.UTF-8. Role `ferry` (LOGIN CREATEDB, random password)
# owns database `ferry`; tests create a database of their own each.
# Exports FERRY_TEST_POSTGRES_URL (postgres://ferry:PW@127.0.0.1:PORT/ferry),
# FERRY_TEST_POSTGRES_PORT, FERRY_TEST_POSTGRES_DIR (data directory), FERRY_TEST_POSTGRES_SOCKET
# (socket directory: `psql -h $FERRY_TEST_POSTGRES_SOCKET -p $FERRY_TEST_POSTGRES_PORT -U postgres`
# is the superuser), FERRY_TEST_POSTGRES_BIN, FERRY_TEST_POSTGRES_OPTIONS (the server options of
# the start, pg_ctl's -o) and FERRY_TEST_POSTGRES_LOG. A test stops and starts the server with
#   runuser -u postgres -- "$FERRY_TEST_POSTGRES_BIN/pg_ctl" -D "$FERRY_TEST_POSTGRES_DIR" -w stop -m fast
#   runuser -u postgres -- "$FERRY_TEST_POSTGRES_BIN/pg_ctl" -D "$FERRY_TEST_POSTGRES_DIR" -w \
#       -l "$FERRY_TEST_POSTGRES_LOG" -o "$FERRY_TEST_POSTGRES_OPTIONS" start
# from a working directory user postgres may read (/ will do), and with -l: without it the server
# keeps the starting process's stdout (a test's captured output) open.
# A server of this state directory that runs on the same port and socket is reused; one that
# runs with other ones is stopped and started again. ferry_stop_all stops it by the PID in its
# postmaster.pid (so also after a test restarted it), with a fast shutdown (SIGINT).

FERRY_PG_BIN=/usr/lib/postgresql/15/bin

# _ferry_pg_pid DATA_DIR: the PID of the postmaster running on DATA_DIR (first line of its
# postmaster.pid, checked against its command line). Empty when none runs.
_ferry_pg_pid() {
    local pid
    pid=$(head -n 1 "$1/postmaster.pid" 2>/dev/null | tr -dc 0-9)
    [[ -n "$pid" && -r "/proc/$pid/cmdline" ]] || return 0
    if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "-D $1 "; then
        echo "$pid"
    fi
}

# True when process $1 is gone or a zombie: this machine's init reaps orphans only every ~2 s,
# and PostgreSQL takes a zombie named in a postmaster.pid for a running server.
_ferry_pid_gone() {
    [[ ! -d /proc/$1 || "$(sed -n 's/.*) \(.\).*/\1/p' "/proc/$1/stat" 2>/dev/null)" == Z ]]
}

# _ferry_pg_halt PID: PostgreSQL's fast shutdown (SIGINT: SIGTERM would be the "smart" one, which
# waits for every client to leave), then immediate (SIGQUIT) after 20 s, SIGKILL after 20 more.
# Only ever called on a PID that _ferry_pg_pid or _ferry_our_pid vouched for.
_ferry_pg_halt() {
    local pid=$1 sig i
    for sig in INT QUIT KILL; do
        kill "-$sig" "$pid" 2>/dev/null || return 0
        for ((i = 0; i < 200; i++)); do
            _ferry_pid_gone "$pid" && return 0
            sleep 0.1
        done
        _ferry_log "postgres (pid $pid) still alive 20 s after SIG$sig"
    done
}

# _ferry_pg CMD ARGS...: PostgreSQL 15's CMD as user postgres, from / (pg_ctl and psql want a
# working directory they may read), without a caller's lock (fd 9).
_ferry_pg() {
    (cd / && runuser -u postgres -- "$FERRY_PG_BIN/$1" "${@:2}") 9>&-
}

ferry_start_postgres() {
    _ferry_init || return 1
    local s=$FERRY_TEST_STATE port=${FERRY_TEST_POSTGRES_PORT:-5433}
    local dir="$FERRY_TEST_STATE/postgres" link="$FERRY_TEST_STATE/postgres-sock"
    local log="$FERRY_TEST_STATE/logs/postgres.log" pidf="$FERRY_TEST_STATE/pids/postgres.pid"
    local pwf="$FERRY_TEST_STATE/postgres-password" t0 pid owner sock opts pw info stale f
    t0=$(_ferry_now_ms)
    touch "$log"
    if ((EUID != 0)); then
        _ferry_fail "cannot start postgres" "$log" "must run as root (the server runs as user postgres)"
        return 1
    fi
    if [[ ! -x "$FERRY_PG_BIN/postgres" ]] || ! id -u postgres >/dev/null 2>&1; then
        _ferry_fail "cannot start postgres" "$log" "PostgreSQL 15 is missing (ferry_install_missing installs it)"
        return 1
    fi
    # User postgres must reach its directories in ours: a mktemp directory is root's alone (0700).
    if ! runuser -u postgres -- test -x "$s"; then
        _ferry_log "chgrp postgres $s; chmod g+x (user postgres must reach its directories)" >>"$log"
        chgrp postgres "$s" && chmod g+x "$s"
    fi
    if ! runuser -u postgres -- test -x "$s"; then
        _ferry_fail "cannot start postgres" "$log" "user postgres cannot reach $s (a parent directory is closed to it)"
        return 1
    fi
    chown postgres:postgres "$log"
    # The socket directory: its socket's path must fit a sockaddr_un (107 bytes) and sit unquoted
    # in pg_ctl's -o string.
    if [[ ! -e "$link" && ! -L "$link" ]]; then
        if ((${#link} + ${#port} + 10 > 107)) || [[ ! "$link" =~ ^[A-Za-z0-9_./:@%,+=-]*$ ]]; then
            sock=$(mktemp -d /tmp/ferry-pg.XXXX) || return 1
            ln -s "$sock" "$link"
        else
            mkdir -p "$link"
        fi
    fi
    sock=$(readlink -f "$link")
    mkdir -p "$sock" && chown postgres:postgres "$sock"
    opts="-c listen_addresses=127.0.0.1 -p $port -k $sock -c fsync=off"
    pid=$(_ferry_pg_pid "$dir")
    if [[ -n "$pid" ]]; then
        # postmaster.pid's lines 4 and 5: the port and socket directory it runs with.
        info=$(sed -n '4p;5p' "$dir/postmaster.pid" | tr '\n' ' ')
        if [[ "$info" == "$port $sock " ]]; then
            _ferry_log "postgres (pid $pid) already running on $dir: reused" >>"$log"
        else
            _ferry_log "postgres (pid $pid) runs with port and socket $info, not $port $sock: restarting it" >>"$log"
            _ferry_pg_halt "$pid" >>"$log"
            pid=
        fi
    fi
    if [[ -z "$pid" ]]; then
        owner=$(_ferry_port_owner "$port")
        if [[ -n "$owner" ]]; then
            _ferry_fail "cannot start postgres" "$log" "port $port is already in use: $owner (set FERRY_TEST_POSTGRES_PORT)"
            return 1
        fi
        # Lock files left by a killed server: PostgreSQL removes them itself when their PID is
        # gone, but not while it is a zombie.
        for f in "$dir/postmaster.pid" "$sock/.s.PGSQL.$port.lock"; do
            stale=$(head -n 1 "$f" 2>/dev/null | tr -dc 0-9)
            if [[ -n "$stale" ]] && _ferry_pid_gone "$stale"; then
                _ferry_log "removing $f of pid $stale (gone)" >>"$log"
                rm -f "$f"
            fi
        done
        if [[ ! -s "$dir/PG_VERSION" ]]; then
            # Nothing, or what an interrupted initdb left.
            rm -rf --one-file-system "${dir:?}"
            mkdir -p "$dir" && chown postgres:postgres "$dir" && chmod 700 "$dir"
            _ferry_log "initdb $dir" >>"$log"
            if ! _ferry_pg initdb -D "$dir" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
                -E UTF8 --locale=C.UTF-8 --no-sync </dev/null >>"$log" 2>&1; then
                _ferry_fail "cannot start postgres" "$log" "initdb failed"
                return 1
            fi
        fi
        _ferry_log "starting postgres on 127.0.0.1:$port, socket $sock, data $dir" >>"$log"
        # In a session of its own: Ctrl-C reaches the tests, not the server.
        if ! (cd / && setsid -w runuser -u postgres -- "$FERRY_PG_BIN/pg_ctl" -D "$dir" -l "$log" -w -t 60 \
            -o "$opts" start) </dev/null >>"$log" 2>&1 9>&-; then
            _ferry_fail "cannot start postgres" "$log" "pg_ctl start failed"
            return 1
        fi
        pid=$(_ferry_pg_pid "$dir")
        [[ -n "$pid" ]] || { _ferry_fail "cannot start postgres" "$log" "no postmaster runs on $dir after pg_ctl start"; return 1; }
    fi
    echo "$pid" >"$pidf"
    [[ -s "$pwf" ]] || (umask 077 && _ferry_random_password >"$pwf")
    pw=$(<"$pwf")
    # The role and its database, made or brought back in line with the password file.
    if ! _ferry_pg psql -X -q -v ON_ERROR_STOP=1 -h "$sock" -p "$port" -U postgres -d postgres \
        >>"$log" 2>&1 <<SQL; then
SELECT 'CREATE ROLE ferry' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ferry')\gexec
ALTER ROLE ferry LOGIN CREATEDB PASSWORD '$pw';
SELECT 'CREATE DATABASE ferry OWNER ferry' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'ferry')\gexec
SQL
        _ferry_fail "cannot start postgres" "$log" "creating role and database ferry failed"
        return 1
    fi
    if ! PGPASSWORD=$pw "$FERRY_PG_BIN/psql" -X -q -At -h 127.0.0.1 -p "$port" -U ferry -d ferry \
        -c 'SELECT 1' </dev/null >/dev/null 2>>"$log"; then
        _ferry_fail "cannot start postgres" "$log" "role ferry cannot log in over 127.0.0.1:$port"
        return 1
    fi
    _ferry_export FERRY_TEST_POSTGRES_URL "postgres://ferry:$pw@127.0.0.1:$port/ferry"
    _ferry_export FERRY_TEST_POSTGRES_PORT "$port"
    _ferry_export FERRY_TEST_POSTGRES_DIR "$dir"
    _ferry_export FERRY_TEST_POSTGRES_SOCKET "$sock"
    _ferry_export FERRY_TEST_POSTGRES_BIN "$FERRY_PG_BIN"
    _ferry_export FERRY_TEST_POSTGRES_OPTIONS "$opts"
    _ferry_export FERRY_TEST_POSTGRES_LOG "$log"
    _ferry_started postgres "$t0"
}

# The server (by its postmaster.pid, and by our PID file in case that is gone), then the short
# socket directory if one was made.
_ferry_stop_postgres() {
    local dir="$FERRY_TEST_STATE/postgres" pidf="$FERRY_TEST_STATE/pids/postgres.pid"
    local link="$FERRY_TEST_STATE/postgres-sock" pid pid2 short
    pid=$(_ferry_pg_pid "$dir")
    pid2=$(_ferry_our_pid "$pidf" "-D $dir ")
    if [[ -n "$pid" ]]; then
        _ferry_log "stopping postgres (pid $pid, fast shutdown)"
        _ferry_pg_halt "$pid"
    fi
    if [[ -n "$pid2" && "$pid2" != "$pid" ]]; then
        _ferry_log "stopping postgres (pid $pid2 of $pidf, fast shutdown)"
        _ferry_pg_halt "$pid2"
    fi
    rm -f "$pidf"
    if [[ -L "$link" ]]; then
        short=$(readlink "$link")
        [[ "$short" == /tmp/ferry-pg.* ]] && rm -rf --one-file-system "$short"
        rm -f "$link"
    fi
    return 0
}

# --- dockerd-build: a build host that cannot reach this machine's own services -----------------

# A Docker daemon in its own network namespace ($FERRY_TEST_BUILD_NAME, default ferry-bk): a veth
# pair $NET.1/30 (here) <-> $NET.2/30 (there, default route via here), NAT for what leaves this
# machine, and netfilter rules so that nothing in the namespace can open a connection to this
# machine itself (its loopback is another namespace's anyway; its other addresses, the gateway
# $NET.1 included, are dropped in INPUT) nor to cloud metadata (169.254.0.0/16, in FORWARD).
# Even a `--network host` build then reaches neither the broker nor the registry on loopback.
# A second namespace ($NAME-m, $NET.6/30 behind $NET.5) stands in for a dependency mirror on
# another machine: builds may reach it. $NET is FERRY_TEST_BUILD_NET (default 10.202.0).
# Exports FERRY_TEST_BUILD_DOCKER_HOST, FERRY_TEST_BUILD_GATEWAY, FERRY_TEST_BUILD_MIRROR_NETNS
# (for `nsenter --net=...`) and FERRY_TEST_BUILD_MIRROR_ADDR.
ferry_start_dockerd_build() {
    _ferry_init || return 1
    local name=${FERRY_TEST_BUILD_NAME:-ferry-bk} net=${FERRY_TEST_BUILD_NET:-10.202.0}
    local d="$FERRY_TEST_STATE/docker/build" log="$FERRY_TEST_STATE/logs/dockerd-build.log"
    local sockdir sock x t0 pid tag
    t0=$(_ferry_now_ms)
    sockdir=$(_ferry_docker_sockdir) || return 1
    sock="$sockdir/build.sock" x="$sockdir/build.exec"
    local veth="$name-h" mns="$name-m" mveth="$name-mh"
    mkdir -p "$d/data" "$x"
    for c in ip iptables nsenter; do
        command -v "$c" >/dev/null ||
            { _ferry_fail "cannot start dockerd-build" "$log" "$c is missing (ferry_install_missing installs it)"; return 1; }
    done
    ((${#veth} <= 15 && ${#mveth} <= 15)) ||
        { _ferry_fail "cannot start dockerd-build" "$log" "FERRY_TEST_BUILD_NAME '$name' is too long for interface names"; return 1; }
    # Recorded for the stop: what was made, so that only that is removed.
    printf 'name=%s\nnet=%s\n' "$name" "$net" >"$d/made"
    tag="ferry-test:$name"
    pid=$(_ferry_our_pid "$d/pid" "$d/pid")
    if [[ -z "$pid" ]]; then
        _ferry_build_net_down "$name" # leftovers of a run killed before its clean-up
        {
            ip netns add "$name" && ip netns add "$mns" &&
                ip link add "$veth" type veth peer name eth0 netns "$name" &&
                ip addr add "$net.1/30" dev "$veth" && ip link set "$veth" up &&
                nsenter --net="/var/run/netns/$name" sh -c "
                    ip link set lo up && ip addr add $net.2/30 dev eth0 && ip link set eth0 up &&
                    ip route add default via $net.1" &&
                ip link add "$mveth" type veth peer name eth0 netns "$mns" &&
                ip addr add "$net.5/30" dev "$mveth" && ip link set "$mveth" up &&
                nsenter --net="/var/run/netns/$mns" sh -c "
                    ip link set lo up && ip addr add $net.6/30 dev eth0 && ip link set eth0 up &&
                    ip route add default via $net.5"
        } >>"$log" 2>&1 || { _ferry_fail "cannot start dockerd-build" "$log" "creating the namespaces failed"; return 1; }
        if [[ "$(cat /proc/sys/net/ipv4/ip_forward)" != 1 ]]; then
            echo 0 >"$d/ip_forward.before"
            echo 1 >/proc/sys/net/ipv4/ip_forward
        fi
        {
            iptables -w -t nat -A POSTROUTING -s "$net.0/30" ! -o "$veth" -m comment --comment "$tag" -j MASQUERADE &&
                iptables -w -I FORWARD -o "$veth" -m conntrack --ctstate ESTABLISHED,RELATED -m comment --comment "$tag" -j ACCEPT &&
                iptables -w -I FORWARD -i "$veth" -m comment --comment "$tag" -j ACCEPT &&
                iptables -w -I FORWARD -i "$veth" -d 169.254.0.0/16 -m comment --comment "$tag" -j DROP &&
                iptables -w -I INPUT -i "$veth" -m conntrack ! --ctstate ESTABLISHED,RELATED -m comment --comment "$tag" -j DROP
        } >>"$log" 2>&1 || { _ferry_fail "cannot start dockerd-build" "$log" "iptables failed"; return 1; }
        _ferry_log "starting dockerd-build in netns $name" >>"$log"
        # nsenter, not `ip netns exec` (which remounts /sys: dockerd then fails). Bridge networking
        # and iptables on: the daemon's NAT and chains live inside the namespace.
        pid=$(_ferry_spawn "$d/launch.pid" "$log" nsenter --net="/var/run/netns/$name" dockerd \
            --data-root "$d/data" --exec-root "$x" --pidfile "$d/pid" --host "unix://$sock" \
            --bip 10.231.0.1/24 --default-address-pool base=10.232.0.0/16,size=24 \
            --containerd-namespace ferry-build --containerd-plugins-namespace ferry-build-plugins) ||
            { _ferry_fail "cannot start dockerd-build" "$log" "could not launch dockerd"; return 1; }
    fi
    local deadline=$((SECONDS + 60))
    until docker -H "unix://$sock" version >/dev/null 2>&1; do
        if [[ -n "$pid" ]] && ! kill -0 "$pid" 2>/dev/null; then
            _ferry_fail "cannot start dockerd-build" "$log" "dockerd exited"
            return 1
        fi
        if ((SECONDS >= deadline)); then
            _ferry_fail "cannot start dockerd-build" "$log" "no answer on unix://$sock within 60 s"
            return 1
        fi
        sleep 0.2
    done
    _ferry_export FERRY_TEST_BUILD_DOCKER_HOST "unix://$sock"
    _ferry_export FERRY_TEST_BUILD_GATEWAY "$net.1"
    _ferry_export FERRY_TEST_BUILD_MIRROR_NETNS "/var/run/netns/$mns"
    _ferry_export FERRY_TEST_BUILD_MIRROR_ADDR "$net.6"
    _ferry_started dockerd-build "$t0"
}

# _ferry_build_net_down NAME: the namespaces and this machine's netfilter rules made for NAME.
_ferry_build_net_down() {
    local name=$1 table rule
    ip netns del "$name" 2>/dev/null
    ip netns del "$name-m" 2>/dev/null
    ip link del "$name-h" 2>/dev/null
    ip link del "$name-mh" 2>/dev/null
    for table in filter nat; do
        iptables -w -t "$table" -S 2>/dev/null | grep -E -- "--comment \"?ferry-test:$name\"? " |
            while read -r rule; do
                # `-A CHAIN spec...` as printed by -S: delete the same spec.
                eval "iptables -w -t $table -D ${rule#-A }"
            done
    done
    return 0
}

_ferry_stop_dockerd_build() {
    local s=$FERRY_TEST_STATE d="$FERRY_TEST_STATE/docker/build" sockdir pid name i comm m
    [[ -s "$d/made" ]] || return 0
    sockdir="$s/docker"
    [[ -s "$s/docker/short-root" ]] && sockdir=$(<"$s/docker/short-root")
    name=$(sed -n 's/^name=//p' "$d/made")
    pid=$(_ferry_our_pid "$d/pid" "$d/pid")
    if [[ -n "$pid" ]]; then
        _ferry_log "stopping dockerd-build (pid $pid)"
        _ferry_terminate "$pid" dockerd-build 30
    fi
    # Leftover containerd and shims of this daemon (after a SIGKILL), by its exec root.
    for i in /proc/[0-9]*; do
        pid=${i#/proc/}
        comm=$(cat "$i/comm" 2>/dev/null) || continue
        case "$comm" in containerd | containerd-shim* | dockerd) ;; *) continue ;; esac
        if tr '\0' ' ' <"$i/cmdline" 2>/dev/null | grep -qF "$sockdir/build.exec"; then
            _ferry_log "stopping leftover $comm (pid $pid)"
            _ferry_terminate "$pid" "$comm" 10
        fi
    done
    while read -r m; do
        [[ -n "$m" ]] || continue
        _ferry_log "umount $m"
        umount "$m" || umount -l "$m"
    done < <(awk -v a="$d/" -v b="$sockdir/build.exec/" 'index($2, a) == 1 || index($2, b) == 1 {print $2}' \
        /proc/mounts | sort -r)
    [[ -n "$name" ]] && _ferry_build_net_down "$name"
    if [[ -s "$d/ip_forward.before" ]]; then
        cat "$d/ip_forward.before" >/proc/sys/net/ipv4/ip_forward
        rm -f "$d/ip_forward.before"
    fi
    rm -f "$d/made"
    _ferry_log "dockerd-build stopped, namespace $name and its rules removed"
}

# --- all ---------------------------------------------------------------------------------------

# ferry_start_components rabbitmq dockerd:3 registry svnserve
# --- sshd: a Docker host reached over SSH -------------------------------------------------------

# sshd on 127.0.0.1:${FERRY_TEST_SSH_PORT:-2222} whose only key may run nothing but
# `docker system dial-stdio` against the second Docker daemon (start dockerd:2+ first):
# what an `ssh://` Docker host is. Exports FERRY_TEST_SSH_URL and FERRY_TEST_SSH_KEY.
ferry_start_sshd() {
    _ferry_init || return 1
    local port=${FERRY_TEST_SSH_PORT:-2222} d="$FERRY_TEST_STATE/sshd" t0 pid owner target user
    local log="$FERRY_TEST_STATE/logs/sshd.log" pidf="$FERRY_TEST_STATE/pids/sshd.pid"
    t0=$(_ferry_now_ms)
    target=$(echo "${FERRY_TEST_DOCKER_HOSTS:-}" | cut -d, -f2)
    [[ -n "$target" ]] || { _ferry_fail "cannot start sshd" "$log" "start dockerd:2 (or more) first"; return 1; }
    if [[ ! -x /usr/sbin/sshd ]]; then
        _ferry_log "installing openssh-server" >>"$log"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q openssh-server >>"$log" 2>&1 ||
            { _ferry_fail "cannot start sshd" "$log" "apt-get install openssh-server failed"; return 1; }
    fi
    user=$(id -un)
    mkdir -p "$d" /run/sshd
    [[ -s "$d/host_key" ]] || ssh-keygen -q -t ed25519 -N '' -f "$d/host_key" >>"$log" 2>&1
    [[ -s "$d/client_key" ]] || ssh-keygen -q -t ed25519 -N '' -f "$d/client_key" >>"$log" 2>&1
    chmod 600 "$d/host_key" "$d/client_key"
    printf 'command="DOCKER_HOST=%s exec /usr/bin/docker system dial-stdio",no-pty,no-port-forwarding,no-agent-forwarding,no-X11-forwarding %s\n' \
        "$target" "$(<"$d/client_key.pub")" >"$d/authorized_keys"
    cat >"$d/sshd_config" <<CONF
Port $port
ListenAddress 127.0.0.1
HostKey $d/host_key
PidFile $pidf
AuthorizedKeysFile $d/authorized_keys
AllowUsers $user
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
LogLevel INFO
CONF
    # The Docker client library drops the port of an ssh:// URL, so the host is a Host
    # alias in the system ssh configuration (as an operator would name a host on another
    # port), with its own known_hosts: nothing of the user's ~/.ssh is touched.
    local alias="ferry-test-sshd-$port"
    mkdir -p /etc/ssh/ssh_config.d
    cat >"/etc/ssh/ssh_config.d/$alias.conf" <<CONF
# Written by Ferry's test harness ($FERRY_TEST_STATE); removed when it stops.
Host $alias
    HostName 127.0.0.1
    Port $port
    IdentityFile $d/client_key
    UserKnownHostsFile $d/known_hosts
    StrictHostKeyChecking accept-new
CONF
    echo "/etc/ssh/ssh_config.d/$alias.conf" >"$d/alias-file"
    _ferry_export FERRY_TEST_SSH_URL "ssh://$user@$alias"
    _ferry_export FERRY_TEST_SSH_KEY "$d/client_key"
    pid=$(_ferry_our_pid "$pidf" "$d/sshd_config")
    if [[ -z "$pid" ]]; then
        owner=$(_ferry_port_owner "$port")
        if [[ -n "$owner" ]]; then
            _ferry_fail "cannot start sshd" "$log" "port $port is already in use: $owner (set FERRY_TEST_SSH_PORT)"
            return 1
        fi
        rm -f "$pidf"
        _ferry_log "starting sshd on 127.0.0.1:$port" >>"$log"
        # Without -D sshd daemonizes and writes PidFile.
        if ! /usr/sbin/sshd -f "$d/sshd_config" -E "$log" </dev/null >>"$log" 2>&1 9>&-; then
            _ferry_fail "cannot start sshd" "$log" "sshd failed to start"
            return 1
        fi
    fi
    local deadline=$((SECONDS + 20))
    until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
        if ((SECONDS >= deadline)); then
            _ferry_fail "cannot start sshd" "$log" "nothing listens on 127.0.0.1:$port within 20 s"
            return 1
        fi
        sleep 0.1
    done
    _ferry_started sshd "$t0"
}

# --- headless Chromium + chromedriver -------------------------------------------------------------

# chromedriver (WebDriver) on 127.0.0.1:${FERRY_TEST_CHROMEDRIVER_PORT:-9515}, for browser tests
# of Ferry's web dashboard; each test's session starts its own headless Chromium (testkit's
# `browser` module). chromedriver listens on loopback by itself and refuses other hosts: it gets
# no --allowed-ips (which would open it on every interface). Chromium writes under ~/.config and
# chromedriver leaves /tmp/org.chromium.* behind: XDG_CONFIG_HOME, XDG_CACHE_HOME and TMPDIR
# point into a private directory under the state directory instead (TMPDIR also holds
# Chromium's singleton socket, so it is a short directory under /tmp when that path would be too
# long for a unix socket). Exports FERRY_TEST_WEBDRIVER_URL, FERRY_TEST_CHROMIUM_BIN and
# FERRY_TEST_BROWSER_DIR (the private directory; tests make their profiles in it).
ferry_start_chromedriver() {
    _ferry_init || return 1
    local port=${FERRY_TEST_CHROMEDRIVER_PORT:-9515} dir="$FERRY_TEST_STATE/browser"
    local log="$FERRY_TEST_STATE/logs/chromedriver.log" pidf="$FERRY_TEST_STATE/pids/chromedriver.pid"
    local t0 pid owner tmp chromium
    t0=$(_ferry_now_ms)
    chromium=$(command -v chromium) ||
        { _ferry_fail "cannot start chromedriver" "$log" "chromium is missing (ferry_install_missing installs it)"; return 1; }
    command -v chromedriver >/dev/null ||
        { _ferry_fail "cannot start chromedriver" "$log" "chromedriver is missing (ferry_install_missing installs chromium-driver)"; return 1; }
    mkdir -p "$dir/config" "$dir/cache"
    tmp="$dir/tmp"
    if [[ -s "$dir/short-tmp" ]]; then
        tmp=$(<"$dir/short-tmp")
    elif ((${#tmp} > 60)); then
        tmp=$(mktemp -d /tmp/ferry-br.XXXX) ||
            { _ferry_fail "cannot start chromedriver" "$log" "cannot make a short TMPDIR under /tmp"; return 1; }
        echo "$tmp" >"$dir/short-tmp"
    fi
    mkdir -p "$tmp"
    # The log path is on the command line: it is what proves a running chromedriver is ours.
    pid=$(_ferry_our_pid "$pidf" "$log")
    if [[ -z "$pid" ]]; then
        owner=$(_ferry_port_owner "$port")
        if [[ -n "$owner" ]]; then
            _ferry_fail "cannot start chromedriver" "$log" "port $port is already in use: $owner (set FERRY_TEST_CHROMEDRIVER_PORT)"
            return 1
        fi
        _ferry_log "starting chromedriver on 127.0.0.1:$port" >>"$log"
        pid=$(_ferry_spawn "$pidf" "$log" env XDG_CONFIG_HOME="$dir/config" XDG_CACHE_HOME="$dir/cache" \
            TMPDIR="$tmp" chromedriver --port="$port" --log-path="$log" --append-log) ||
            { _ferry_fail "cannot start chromedriver" "$log" "could not launch chromedriver"; return 1; }
    fi
    local deadline=$((SECONDS + 30))
    until curl -s --max-time 2 "http://127.0.0.1:$port/status" 2>/dev/null | grep -q '"ready": *true'; do
        if ! kill -0 "$pid" 2>/dev/null; then
            _ferry_fail "cannot start chromedriver" "$log" "chromedriver exited"
            return 1
        fi
        if ((SECONDS >= deadline)); then
            _ferry_fail "cannot start chromedriver" "$log" "http://127.0.0.1:$port/status not ready within 30 s"
            return 1
        fi
        sleep 0.1
    done
    _ferry_export FERRY_TEST_WEBDRIVER_URL "http://127.0.0.1:$port"
    _ferry_export FERRY_TEST_CHROMIUM_BIN "$chromium"
    _ferry_export FERRY_TEST_BROWSER_DIR "$dir"
    _ferry_started chromedriver "$t0"
}

# chromedriver, then any Chromium a session left running (a test that never ended its session):
# those are recognised by a profile or temporary directory of ours on their command line.
_ferry_stop_chromedriver() {
    local s=$FERRY_TEST_STATE dir="$FERRY_TEST_STATE/browser" i pid comm tmp=""
    [[ -d "$dir" ]] || return 0
    [[ -s "$dir/short-tmp" ]] && tmp=$(<"$dir/short-tmp")
    _ferry_stop_pidfile chromedriver "$s/pids/chromedriver.pid" "$s/logs/chromedriver.log"
    for i in /proc/[0-9]*; do
        pid=${i#/proc/}
        comm=$(cat "$i/comm" 2>/dev/null) || continue
        [[ "$comm" == chrom* ]] || continue
        if tr '\0' ' ' <"$i/cmdline" 2>/dev/null | grep -qF -e "$dir/" -e "${tmp:-$dir}/"; then
            _ferry_log "stopping leftover $comm (pid $pid)"
            _ferry_terminate "$pid" "$comm" 5 &
        fi
    done
    wait
    [[ "$tmp" == /tmp/ferry-br.* ]] && rm -rf --one-file-system "$tmp" && rm -f "$dir/short-tmp"
    return 0
}

ferry_start_components() {
    local c
    for c in "$@"; do
        case "$c" in
        rabbitmq) ferry_start_rabbitmq || return 1 ;;
        rabbitmq-cluster) ferry_start_rabbitmq_cluster || return 1 ;;
        dockerd) ferry_start_dockerd 1 || return 1 ;;
        dockerd:*) ferry_start_dockerd "${c#dockerd:}" || return 1 ;;
        registry) ferry_start_registry || return 1 ;;
        svnserve) ferry_start_svnserve || return 1 ;;
        postgres) ferry_start_postgres || return 1 ;;
        sshd) ferry_start_sshd || return 1 ;;
        dockerd-build) ferry_start_dockerd_build || return 1 ;;
        compose-host) ferry_start_compose_host || return 1 ;;
        chromedriver) ferry_start_chromedriver || return 1 ;;
        *)
            echo "ferry_start_components: unknown component '$c'" >&2
            return 1
            ;;
        esac
    done
}

# Stops whatever was started under $FERRY_TEST_STATE. Safe to call any number of times, with
# nothing started, and from an EXIT trap (runs in a subshell without errexit; always returns 0).
ferry_stop_all() {
    [[ -n "${FERRY_TEST_STATE:-}" && -d "${FERRY_TEST_STATE:-}" ]] || return 0
    (
        set +e +u
        mkdir -p "$FERRY_TEST_STATE/logs"
        _ferry_stop_all_impl >>"$FERRY_TEST_STATE/logs/stop.log" 2>&1
    )
    return 0
}

_ferry_stop_all_impl() {
    local s=$FERRY_TEST_STATE
    _ferry_log "ferry_stop_all $s"
    # Components stop in parallel (a Docker daemon with a running container takes ~12 s).
    _ferry_stop_rabbit_nodes &
    ferry_stop_rabbitmq_cluster &
    _ferry_stop_dockerds &
    _ferry_stop_pidfile registry "$s/pids/registry.pid" "$s/registry/config.yml" &
    _ferry_stop_pidfile svnserve "$s/pids/svnserve.pid" "$s/svn" &
    _ferry_stop_pidfile sshd "$s/pids/sshd.pid" "$s/sshd/sshd_config" &
    _ferry_stop_postgres &
    _ferry_stop_dockerd_build &
    _ferry_stop_compose_host &
    _ferry_stop_chromedriver &
    [[ -s "$s/sshd/alias-file" ]] && rm -f "$(<"$s/sshd/alias-file")"
    wait
    _ferry_log "ferry_stop_all done"
}

# _ferry_stop_pidfile NAME PIDFILE NEEDLE
_ferry_stop_pidfile() {
    local pid
    pid=$(_ferry_our_pid "$2" "$3")
    [[ -n "$pid" ]] || return 0
    _ferry_log "stopping $1 (pid $pid)"
    _ferry_terminate "$pid" "$1" 10
    rm -f "$2"
}

# Every private node under $FERRY_TEST_STATE/rabbit* (the main one and those tests started), then
# epmd if one of them launched it and no node is registered any more.
_ferry_stop_rabbit_nodes() {
    local s=$FERRY_TEST_STATE f d pid nodes=()
    for f in "$s"/rabbit*/.ferry-rabbit-node "$s"/rabbit*/*/.ferry-rabbit-node; do
        [[ -e "$f" ]] && nodes+=("${f%/.ferry-rabbit-node}")
    done
    for d in "${nodes[@]}"; do
        "$FERRY_RABBIT_NODE_SCRIPT" stop "$d" &
    done
    wait
    for d in "${nodes[@]}"; do
        [[ -s "$d/epmd.pid" ]] || continue
        pid=$(tr -dc 0-9 <"$d/epmd.pid")
        rm -f "$d/epmd.pid"
        [[ -n "$pid" && "$(cat "/proc/$pid/comm" 2>/dev/null)" == epmd ]] || continue
        if ERL_EPMD_ADDRESS=127.0.0.1 epmd -names 2>/dev/null | grep -q '^name '; then
            _ferry_log "epmd (pid $pid) still has nodes registered; left running"
        else
            _ferry_log "stopping epmd (pid $pid)"
            _ferry_terminate "$pid" epmd 5
        fi
    done
}

_ferry_stop_dockerds() {
    local s=$FERRY_TEST_STATE f d pid i comm m sockdir="$FERRY_TEST_STATE/docker"
    [[ -s "$s/docker/short-root" ]] && sockdir=$(<"$s/docker/short-root")
    for f in "$s"/docker/h*/pid; do
        [[ -e "$f" ]] || continue
        d=${f%/pid}
        pid=$(_ferry_our_pid "$f" "$f")
        [[ -n "$pid" ]] || continue
        _ferry_log "stopping dockerd ${d##*/} (pid $pid)"
        _ferry_terminate "$pid" "dockerd ${d##*/}" 30 &
    done
    wait
    # Leftovers can only remain after a SIGKILL: the daemons' containerd and shims, recognised
    # by their name and by naming one of our exec roots on their command line.
    for i in /proc/[0-9]*; do
        pid=${i#/proc/}
        comm=$(cat "$i/comm" 2>/dev/null) || continue
        case "$comm" in containerd | containerd-shim* | dockerd | docker-proxy) ;; *) continue ;; esac
        if tr '\0' ' ' <"$i/cmdline" 2>/dev/null | grep -qF "$sockdir/h"; then
            # A shim's children are its container's init processes: killing one ends the container.
            local child
            for child in $(ps -o pid= --ppid "$pid" 2>/dev/null); do
                _ferry_log "killing container process $child of leftover $comm (pid $pid)"
                kill -KILL "$child" 2>/dev/null
            done
            _ferry_log "stopping leftover $comm (pid $pid)"
            _ferry_terminate "$pid" "$comm" 10
        fi
    done
    # Mounts left under our directories (the nsfs at exec/netns/default, container layers).
    while read -r m; do
        [[ -n "$m" ]] || continue
        _ferry_log "umount $m"
        umount "$m" || umount -l "$m"
    done < <(awk -v a="$s/" -v b="$sockdir/" 'index($2, a) == 1 || index($2, b) == 1 {print $2}' \
        /proc/mounts | sort -r)
    # The short directory made for sockets (long FERRY_TEST_STATE) holds only runtime files.
    if [[ "$sockdir" != "$s/docker" && -d "$sockdir" ]] && ! grep -qF " $sockdir/" /proc/mounts; then
        rm -rf --one-file-system "$sockdir" && rm -f "$s/docker/short-root"
    fi
}

# shellcheck source=tests/lib/compose-host.sh
source "$FERRY_TESTS_DIR/lib/compose-host.sh"
