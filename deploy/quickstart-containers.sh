# shellcheck shell=bash
# The quick start's --containers mode (sourced by deploy/quickstart.sh, uses its helpers):
# Ferry's seven services, RabbitMQ and the registry as docker-compose containers from the
# repository's docker-compose.yml and the images deploy/images.sh builds here.
#
# Where it runs: a compose host (tests/lib/compose-host.sh), a network namespace of its own
# ($QC_NETNS at $QC_ADDR) holding the engine docker-compose runs on and Ferry builds with,
# staging and production Docker hosts behind TLS, svnserve and a git daemon for the config
# repo. What a person looks at is forwarded to loopback here, as in the processes mode:
# the API on 127.0.0.1:$API_PORT, the blue/green ports 18080/18081 (staging) and
# 18090/18091 (production), and the stack's Prometheus on 127.0.0.1:$QC_PROMETHEUS_PORT
# (FERRY_QUICKSTART_PROMETHEUS_PORT, default 9490: not 9090, which a Prometheus of this
# machine may hold).

QC_NAME=ferry-qs
QC_NET=10.205.0
QC_ADDR=$QC_NET.2
QC_PROJECT=ferryqs
QC_FORWARDS=(18080 18081 18090 18091)
QC_PROMETHEUS_PORT=${FERRY_QUICKSTART_PROMETHEUS_PORT:-9490}
export FERRY_TEST_COMPOSE_NAME=$QC_NAME FERRY_TEST_COMPOSE_NET=$QC_NET

qc_compose() { tests/support/compose-stack.sh compose "$STATE/stack" "$@"; }

qc_components_alive() {
    [[ -r "$STATE/env" ]] || return 1
    # shellcheck source=/dev/null
    source "$STATE/env"
    [[ -n "${FERRY_TEST_COMPOSE_DOCKER_HOST:-}" ]] &&
        docker -H "$FERRY_TEST_COMPOSE_DOCKER_HOST" version >/dev/null 2>&1
}

qc_start_components() {
    if qc_components_alive; then
        say "compose host already running (state: $STATE)"
        return
    fi
    say "installing what is missing and starting the compose host: a Docker engine for the stack, staging and production Docker hosts, svnserve, git daemon"
    fresh_state
    command -v socat >/dev/null || apt-get install -y -q socat >/dev/null
    command -v cargo >/dev/null || die "cargo is missing: install Rust (https://rustup.rs) and run again"
    ferry_start_components svnserve compose-host
    # shellcheck source=/dev/null
    source "$STATE/env"
}

# Images (cargo build --release, Debian bases by mmdebstrap: a few minutes the first time),
# the example's repositories and ferry.toml, as the containers test prepares them.
qc_prepare() {
    say "building Ferry's images (deploy/images.sh: cargo build --release and Debian bases; the first time takes several minutes) and seeding $PROJECT"
    mkdir -p "$STATE/logs"
    FERRY_IMAGES_PROFILE=$PROFILE tests/support/compose-stack.sh prepare "$STATE/stack" \
        --example "$PROJECT" --project-name "$QC_PROJECT" --approval auto \
        --smtp "$QC_ADDR:$SMTP_PORT" >"$STATE/logs/prepare.log" 2>&1 ||
        die "preparing the stack failed: see $STATE/logs/prepare.log"
    # The compose file publishes Prometheus on the compose host's loopback; on its address
    # instead, where the forward below (and nothing outside this machine) reaches it. In
    # compose.env, so a `compose-stack.sh compose ... up -d` by hand keeps it there.
    echo "FERRY_PROMETHEUS_BIND=$QC_ADDR" >>"$STATE/stack/compose.env"
    sed -n 's/^image: /  image: /p' "$STATE/stack/images.txt"
    cp "$STATE/stack/operator-token" "$STATE/operator-token"
    echo "$PROJECT" >"$STATE/example"
    echo containers >"$STATE/mode"
}

qc_forward_alive() { pid_alive "$STATE/pids/forward-$1.pid"; }

qc_services_alive() {
    local p
    for p in "$API_PORT" "$QC_PROMETHEUS_PORT" "${QC_FORWARDS[@]}"; do qc_forward_alive "$p" || return 1; done
    pid_alive "$STATE/pids/smtp-sink.pid" || return 1
    [[ -n "$(qc_compose ps -q hook-receiver 2>/dev/null)" ]]
}

# The SMTP sink inside the compose host, where the notifier's container reaches it.
qc_start_sink() {
    mkdir -p "$STATE/pids" "$STATE/logs" "$STATE/mail/cur" "$STATE/mail/new" "$STATE/mail/tmp"
    pid_alive "$STATE/pids/smtp-sink.pid" && return
    ( exec </dev/null >>"$STATE/logs/smtp-sink.log" 2>&1
      exec nsenter --net="$FERRY_TEST_COMPOSE_NETNS" "$PYTHON" -m aiosmtpd -n \
          -l "$QC_ADDR:$SMTP_PORT" -c aiosmtpd.handlers.Mailbox "$STATE/mail" ) &
    echo $! >"$STATE/pids/smtp-sink.pid"
}

# 127.0.0.1:PORT here → the compose host's PORT (the API: its published 8080; Prometheus:
# its 9090).
qc_start_forward() {
    local port=$1 to=$2
    qc_forward_alive "$port" && return
    ( exec </dev/null >>"$STATE/logs/forward.log" 2>&1
      exec socat "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr,fork" "TCP:$QC_ADDR:$to" ) &
    echo $! >"$STATE/pids/forward-$port.pid"
}

qc_start_services() {
    say "starting the stack: docker-compose up -d (RabbitMQ, registry, Ferry's seven services, Prometheus)"
    qc_start_sink
    qc_compose up -d >>"$STATE/logs/compose.log" 2>&1 ||
        die "docker-compose up failed: see $STATE/logs/compose.log"
    # Ready = every service's healthcheck (its /readyz: connected to RabbitMQ).
    local deadline=$((SECONDS + 180)) s health
    for s in rabbitmq "${SERVICES[@]}"; do
        until health=$(docker -H "$FERRY_TEST_COMPOSE_DOCKER_HOST" inspect --format '{{.State.Health.Status}}' \
            "$(qc_compose ps -q "$s")" 2>/dev/null) && [[ $health == healthy ]]; do
            ((SECONDS < deadline)) || die "$s not healthy after 180 s: $(qc_compose logs --tail 20 "$s" 2>&1)"
            sleep 1
        done
    done
    local p
    qc_start_forward "$API_PORT" 8080
    qc_start_forward "$QC_PROMETHEUS_PORT" 9090
    for p in "${QC_FORWARDS[@]}"; do qc_start_forward "$p" "$p"; done
}

qc_stop_all() {
    if [[ -r "$STATE/stack/compose.env" ]] && qc_components_alive; then
        qc_compose down >>"$STATE/logs/compose.log" 2>&1 || true
    fi
    local f
    for f in "$STATE"/pids/forward-*.pid "$STATE/pids/smtp-sink.pid"; do
        if pid_alive "$f"; then kill -TERM "$(<"$f")" 2>/dev/null || true; fi
    done
    [[ -r "$STATE/env" ]] && ferry_stop_all
    say "stopped (state and logs kept in $STATE; delete it for a fresh start)"
}

qc_status() {
    qc_compose ps
    qc_compose exec -T rancher-updater ferry status "$PROJECT"
}

qc_show_where() {
    local mails
    mails=$(find "$STATE/mail" -type f 2>/dev/null | wc -l)
    cat <<EOF

Ferry is running as containers. Look around:
  staging     curl http://127.0.0.1:18080/ or :18081/   (blue/green ports)
  production  curl http://127.0.0.1:18090/ or :18091/
  runs        FERRY_SERVER=http://127.0.0.1:$API_PORT FERRY_TOKEN=\$(cat $STATE/operator-token) $BIN/ferry runs $PROJECT
  prometheus  http://127.0.0.1:$QC_PROMETHEUS_PORT/   (the seven services scraped, job "ferry"; Ferry's alerts at /alerts)
  stack       tests/support/compose-stack.sh compose $STATE/stack ps   (or logs, restart builder, ...)
  status      deploy/quickstart.sh status
  mail        $mails message(s) in $STATE/mail/new (Ferry's notifications)
  the hosts   staging and production Docker hosts at $QC_ADDR:2376 / :2377 (TLS), network namespace $QC_NAME
Ship another commit: deploy/quickstart.sh commit      Stop it all: deploy/quickstart.sh stop
EOF
}
