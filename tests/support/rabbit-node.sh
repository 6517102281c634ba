#!/usr/bin/env bash
# Start, stop, crash or query a PRIVATE RabbitMQ node for Ferry's tests.
#
#   rabbit-node.sh start  DIR [PORT]  start the node (or restart it, keeping its data), bound to
#                                     127.0.0.1:PORT; returns once it accepts AMQP connections
#   rabbit-node.sh stop   DIR         clean shutdown (data kept: durable queues/messages survive)
#   rabbit-node.sh kill   DIR         SIGKILL the beam process (simulates a broker crash)
#   rabbit-node.sh status DIR         prints "running <node> pid <pid> port <port>" (exit 0) or
#                                     "stopped <node>" (exit 3)
#
# Everything the node owns lives in DIR (config, mnesia data, logs, Erlang cookie, pid file).
# The node name is "<basename of DIR>@localhost", so nodes with different DIR basenames run side
# by side; each needs its own AMQP PORT. Its Erlang distribution port is FERRY_RABBIT_DIST_PORT,
# else PORT + 20000 (PORT - 20000 when PORT > 45535, so that any port a test gets from the kernel
# works). Everything listens on
# 127.0.0.1 only. PORT defaults to the one the node last used (DIR/port).
#
# The system RabbitMQ node (/etc/rabbitmq, /var/lib/rabbitmq) is never read or touched.
set -euo pipefail

RMQ_BIN=/usr/lib/rabbitmq/bin
START_TIMEOUT=${FERRY_RABBIT_START_TIMEOUT:-60}
STOP_TIMEOUT=${FERRY_RABBIT_STOP_TIMEOUT:-60}

# Keep epmd and Erlang distribution on loopback.
export ERL_EPMD_ADDRESS=127.0.0.1
export LC_ALL=C.UTF-8 LANG=C.UTF-8

prog=rabbit-node.sh
usage() {
    sed -n '2,9s/^# \{0,1\}//p' "$0" >&2
    exit 2
}
die() {
    echo "$prog: error: $*" >&2
    exit 1
}
log() { echo "$prog: $*" >&2; }

# --- node environment ------------------------------------------------------------------------
setup_env() {
    [[ -n "${1:-}" ]] || usage
    mkdir -p "$1"
    DIR=$(cd "$1" && pwd -P)
    local base=${DIR##*/}
    NAME=$(printf '%s' "$base" | tr -c 'A-Za-z0-9_-' '_')
    NODE="$NAME@localhost"
    PIDFILE="$DIR/rabbit.pid"
    NODELOG="$DIR/log/$NODE.log"
    STARTOUT="$DIR/log/start.out"
    mkdir -p "$DIR/log" "$DIR/mnesia"
    touch "$DIR/.ferry-rabbit-node" # marker: lets ferry_stop_all find every node it has to stop

    # The rabbitmq scripts take all of these from the environment; HOME holds the Erlang cookie
    # shared by the node and rabbitmqctl.
    export HOME="$DIR"
    export RABBITMQ_NODENAME="$NODE"
    export RABBITMQ_CONF_ENV_FILE="$DIR/rabbitmq-env.conf" # empty: ignore /etc/rabbitmq/rabbitmq-env.conf
    export RABBITMQ_CONFIG_FILE="$DIR/rabbitmq.conf"
    export RABBITMQ_ADVANCED_CONFIG_FILE="$DIR/advanced.config" # absent on purpose
    export RABBITMQ_ENABLED_PLUGINS_FILE="$DIR/enabled_plugins"
    export RABBITMQ_MNESIA_BASE="$DIR/mnesia"
    export RABBITMQ_LOG_BASE="$DIR/log"
    export RABBITMQ_PID_FILE="$PIDFILE"
    export ERL_CRASH_DUMP="$DIR/log/erl_crash.dump"
    # Distribution listeners (node and CLI) on loopback only; the CLI takes any free port
    # instead of the fixed 35672-35682 range, so many CLI calls can run in parallel.
    export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
    export RABBITMQ_CTL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
    export RABBITMQ_CTL_DIST_PORT_MIN=0 RABBITMQ_CTL_DIST_PORT_MAX=0
    : >"$RABBITMQ_CONF_ENV_FILE"
}

ctl() { "$RMQ_BIN/rabbitmqctl" -n "$NODE" "$@"; }

# PID of our node's beam process, if it is alive and really is ours (its environment names our
# pid file); empty otherwise.
node_pid() {
    local pid
    [[ -s "$PIDFILE" ]] || return 0
    pid=$(tr -dc 0-9 <"$PIDFILE")
    [[ -n "$pid" && -d "/proc/$pid" ]] || return 0
    if tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qxF "RABBITMQ_PID_FILE=$PIDFILE"; then
        echo "$pid"
    fi
}

log_tail() {
    local f
    for f in "$STARTOUT" "$NODELOG"; do
        [[ -s "$f" ]] || continue
        echo "----- last lines of $f -----" >&2
        tail -n 30 "$f" >&2
    done
}

# Who listens on TCP port $1 (any address), empty if nobody.
port_owner() {
    ss -Hltnp "sport = :$1" 2>/dev/null | awk '{print $4, $6}' | head -n 3
}

# True once the node on 127.0.0.1:$1 answers the AMQP 0-9-1 protocol header with a frame.
amqp_answers() {
    timeout 5 bash -c '
        exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
        printf "AMQP\x00\x00\x09\x01" >&3
        [[ "$(head -c 1 <&3 | od -An -tx1 | tr -d " ")" == 01 ]]' _ "$1" 2>/dev/null
}

# Records the epmd process if this start is what launched it, so ferry_stop_all can end it.
record_epmd_if_new() {
    local had_epmd=$1 pid
    [[ "$had_epmd" == no ]] || return 0
    pid=$(ss -Hltnp "sport = :${ERL_EPMD_PORT:-4369}" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n 1 | cut -d= -f2 || true)
    if [[ -n "$pid" ]] && [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == epmd ]]; then
        echo "$pid" >"$DIR/epmd.pid"
    fi
}

# --- commands ----------------------------------------------------------------------------------
cmd_start() {
    local port=${1:-}
    if [[ -z "$port" ]]; then
        [[ -s "$DIR/port" ]] || die "no PORT given and $DIR has never been started"
        port=$(<"$DIR/port")
    fi
    if ! [[ "$port" =~ ^[0-9]+$ ]] || ((port < 1 || port > 65535)); then
        die "bad AMQP port '$port' (1..65535)"
    fi
    # FERRY_RABBIT_DIST_PORT (kept in DIR/dist_port for restarts) lets a caller pick a port
    # outside the kernel's ephemeral range: PORT + 20000 may be a client socket's by then.
    local dist=${FERRY_RABBIT_DIST_PORT:-} pid
    [[ -n "$dist" || ! -s "$DIR/dist_port" ]] || dist=$(<"$DIR/dist_port")
    if [[ -z "$dist" ]]; then
        dist=$((port + 20000))
        ((dist <= 65535)) || dist=$((port - 20000))
    fi

    pid=$(node_pid)
    if [[ -n "$pid" ]]; then
        local old
        old=$(cat "$DIR/port" 2>/dev/null || true)
        [[ "$old" == "$port" ]] || die "node $NODE is already running on port $old (pid $pid), not $port"
        if amqp_answers "$port"; then
            log "node $NODE already running (pid $pid) on 127.0.0.1:$port"
            return 0
        fi
        log "node $NODE (pid $pid) is running but not answering yet; waiting"
    else
        rm -f "$PIDFILE"
        # Never start next to (or silently connect to) a foreign listener on our ports.
        local owner
        owner=$(port_owner "$port")
        [[ -z "$owner" ]] || die "AMQP port $port is already in use (not by node $NODE): $owner
  -> stop that process or choose another port (tests/run.sh: FERRY_TEST_AMQP_PORT=...)"
        owner=$(port_owner "$dist")
        [[ -z "$owner" ]] || die "Erlang distribution port $dist is already in use: $owner"
        if epmd_names=$(epmd -names 2>/dev/null); then
            if grep -q "^name $NAME at port" <<<"$epmd_names"; then
                die "an Erlang node named '$NAME' is already registered with epmd but it is not the node of $DIR"
            fi
            had_epmd=yes
        else
            had_epmd=no
        fi

        # Rewritten on every start so a changed port takes effect; the data in mnesia/ is kept.
        cat >"$RABBITMQ_CONFIG_FILE" <<CONF
# Written by tests/support/rabbit-node.sh: private test node $NODE
listeners.tcp.default = 127.0.0.1:$port
# Ferry raises the delivery acknowledgement timeout to 2 h (long builds hold deliveries).
consumer_timeout = 7200000
log.file.level = info
log.console = false
CONF
        echo '[].' >"$RABBITMQ_ENABLED_PLUGINS_FILE" # no plugins (no management UI)
        echo "$port" >"$DIR/port"
        echo "$dist" >"$DIR/dist_port"
        export RABBITMQ_DIST_PORT=$dist

        log "starting node $NODE on 127.0.0.1:$port (dist port $dist, dir $DIR)"
        # 9>&-: the node must not inherit (and hold forever) the lock of this script.
        (cd "$DIR" && "$RMQ_BIN/rabbitmq-server" -detached) >"$STARTOUT" 2>&1 9>&- ||
            { log_tail; die "rabbitmq-server -detached failed for node $NODE"; }
    fi

    # Wait for the pid file (written early in boot), then for the broker to finish booting.
    local deadline=$((SECONDS + START_TIMEOUT))
    until pid=$(node_pid) && [[ -n "$pid" ]]; do
        if ((SECONDS >= deadline)); then
            log_tail
            die "node $NODE did not write its pid file $PIDFILE within ${START_TIMEOUT}s"
        fi
        if grep -qs -e 'BOOT FAILED' -e 'Error during startup' "$NODELOG" "$STARTOUT"; then
            log_tail
            die "node $NODE failed to boot"
        fi
        sleep 0.3
    done
    [[ "${had_epmd:-yes}" == no ]] && record_epmd_if_new no
    local left=$((deadline - SECONDS))
    ((left > 0)) || left=1
    if ! ctl -q await_startup --timeout "$left" >>"$STARTOUT" 2>&1; then
        log_tail
        [[ -n "$(node_pid)" ]] || die "node $NODE died while booting"
        die "node $NODE did not finish booting within ${START_TIMEOUT}s"
    fi
    until amqp_answers "$port"; do
        if ((SECONDS >= deadline)) || [[ -z "$(node_pid)" ]]; then
            log_tail
            die "node $NODE booted but does not accept AMQP connections on 127.0.0.1:$port"
        fi
        sleep 0.3
    done
    log "node $NODE is up (pid $pid) on 127.0.0.1:$port"
}

cmd_stop() {
    local pid
    pid=$(node_pid)
    if [[ -z "$pid" ]]; then
        rm -f "$PIDFILE"
        log "node $NODE is not running"
        return 0
    fi
    log "stopping node $NODE (pid $pid)"
    # "stop PIDFILE" returns once the OS process has exited.
    if ! timeout "$STOP_TIMEOUT" "$RMQ_BIN/rabbitmqctl" -n "$NODE" -q stop "$PIDFILE" >>"$DIR/log/stop.out" 2>&1; then
        log "rabbitmqctl stop failed or timed out; sending SIGTERM to pid $pid"
    fi
    terminate "$pid"
    rm -f "$PIDFILE"
}

# Make sure $1 (our beam) is gone: SIGTERM, then SIGKILL after 10 s.
terminate() {
    local pid=$1 i
    [[ -d /proc/$pid && -n "$(node_pid)" ]] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        [[ -d /proc/$pid ]] || return 0
        sleep 0.1
    done
    log "pid $pid ignored SIGTERM; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    wait_gone "$pid"
}

wait_gone() {
    local i
    for ((i = 0; i < 100; i++)); do
        [[ -d /proc/$1 ]] || return 0
        sleep 0.1
    done
    die "pid $1 is still alive"
}

cmd_kill() {
    local pid
    pid=$(node_pid)
    if [[ -z "$pid" ]]; then
        log "node $NODE is not running"
        return 0
    fi
    log "killing node $NODE (SIGKILL pid $pid)"
    kill -KILL "$pid"
    wait_gone "$pid"
}

cmd_status() {
    local pid port
    pid=$(node_pid)
    port=$(cat "$DIR/port" 2>/dev/null || echo '?')
    if [[ -n "$pid" ]] && amqp_answers "$port"; then
        echo "running $NODE pid $pid port $port"
        return 0
    elif [[ -n "$pid" ]]; then
        echo "starting $NODE pid $pid port $port"
        return 3
    fi
    echo "stopped $NODE"
    return 3
}

# --- main --------------------------------------------------------------------------------------
cmd=${1:-}
[[ $# -ge 2 ]] || usage
setup_env "$2"
# One operation at a time per node directory.
exec 9>"$DIR/.lock"
if ! flock -w 1 9; then
    # A node started by an early version of this script inherited the lock fd and holds it for
    # its whole life: then the lock means nothing and is ignored.
    pid=$(node_pid)
    held=no
    if [[ -n "$pid" ]]; then
        for fd in "/proc/$pid/fd/"*; do
            [[ "$(readlink "$fd" 2>/dev/null)" == "$DIR/.lock" ]] && held=yes && break
        done
    fi
    if [[ "$held" == yes ]]; then
        log "warning: node $NODE (pid $pid) holds $DIR/.lock (started by an old rabbit-node.sh); ignoring the lock"
    else
        flock -w 180 9 || die "another rabbit-node.sh is still working on $DIR (lock $DIR/.lock)"
    fi
fi
case "$cmd" in
start) cmd_start "${3:-}" ;;
stop) cmd_stop ;;
kill) cmd_kill ;;
status) cmd_status ;;
*) usage ;;
esac
