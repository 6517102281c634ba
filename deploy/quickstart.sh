#!/usr/bin/env bash
# Ferry in one command: installs what is missing, starts RabbitMQ, a registry, two Docker
# daemons (staging and production), svnserve, an SMTP sink and Ferry's seven services (on
# loopback), seeds the example project (deploy/examples/hello: code in SVN, ops config in
# git), commits a change and shows the run go build → push → pre-pull → staging → tests →
# production, with each stage's time and the e-mail Ferry sent. The stack is left running.
#
#   deploy/quickstart.sh          start (or reuse) the stack and ship one commit
#   deploy/quickstart.sh commit   ship one more commit through the running stack
#   deploy/quickstart.sh status   what runs where, and the last runs
#   deploy/quickstart.sh stop     stop everything it started (state is kept for a look)
#
#   --example hello|shop          which example to ship (before the command; default hello):
#                                 hello is a static page on busybox, shop the PHP
#                                 application our users ship (deploy/examples/shop: nginx +
#                                 php-fpm, composer, esbuild; its Debian bases take ~2 min
#                                 the first time). A state holds one example.
#   --containers                  Ferry's seven services, RabbitMQ and the registry as
#                                 docker-compose containers (docker-compose.yml, images built
#                                 here by deploy/images.sh) on a compose host of their own
#                                 (a network namespace); the same ports on loopback. A state
#                                 holds one mode.
#
# Environment: FERRY_QUICKSTART_STATE (/var/tmp/ferry-quickstart), FERRY_QUICKSTART_API_PORT
# (8480), FERRY_QUICKSTART_AMQP_PORT (5692), FERRY_QUICKSTART_REGISTRY_PORT (5020),
# FERRY_QUICKSTART_SVN_PORT (3710), FERRY_QUICKSTART_SMTP_PORT (2526), FERRY_QUICKSTART_PROFILE
# (cargo profile: release, or dev for a quicker debug build). Ports other than the
# test suite's, so both can run on one machine. Needs root (apt, dockerd) and cargo.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

STATE=${FERRY_QUICKSTART_STATE:-/var/tmp/ferry-quickstart}
API_PORT=${FERRY_QUICKSTART_API_PORT:-8480}
SMTP_PORT=${FERRY_QUICKSTART_SMTP_PORT:-2526}
export FERRY_TEST_STATE=$STATE FERRY_TEST_RABBIT_NAME=ferryqs
export FERRY_TEST_AMQP_PORT=${FERRY_QUICKSTART_AMQP_PORT:-5692}
export FERRY_TEST_REGISTRY_PORT=${FERRY_QUICKSTART_REGISTRY_PORT:-5020}
export FERRY_TEST_SVN_PORT=${FERRY_QUICKSTART_SVN_PORT:-3710}
SERVICES=(hook-receiver builder pusher puller rancher-updater tester notifier)
PROFILE=${FERRY_QUICKSTART_PROFILE:-release}
BIN=$ROOT/target/release
[[ $PROFILE == dev ]] && BIN=$ROOT/target/debug
# Debian's Python, which has python3-aiosmtpd (a pyenv or venv python3 may not).
PYTHON=/usr/bin/python3

usage() { sed -n '2,24s/^# \{0,1\}//p' "$0" >&2; exit 2; }
example= mode=
while [[ ${1:-} == --* ]]; do
    case $1 in
        --example) example=${2:?--example needs hello or shop}; shift 2 ;;
        --containers) mode=containers; shift ;;
        *) usage ;;
    esac
done
# The example and the mode of this state: chosen once, remembered for `commit` and `status`.
remembered() {
    local what=$1 wanted=$2
    [[ -s "$STATE/$what" ]] || { echo "$wanted"; return; }
    [[ -z "$wanted" || "$wanted" == "$(<"$STATE/$what")" ]] ||
        { echo "quickstart: error: $STATE runs $what $(<"$STATE/$what"); run 'deploy/quickstart.sh stop' and delete $STATE to use $wanted" >&2; exit 1; }
    cat "$STATE/$what"
}
example=$(remembered example "$example") || exit 1
mode=$(remembered mode "$mode") || exit 1
example=${example:-hello} mode=${mode:-processes}
PROJECT=$example
EXAMPLE_DIR=deploy/examples/$example
case $example in
    hello)
        FILES='{ "env/production.env" = ".env" }'
        COMMAND='["/bin/httpd", "-f", "-p", "127.0.0.1:{port}", "-h", "/www"]'
        ;;
    shop)
        FILES='{ "env/production.env" = ".env", "nginx/site.conf" = "docker/nginx.conf", "nginx/nginx-main.conf" = "docker/nginx-main.conf", "php/fpm.conf" = "docker/php-fpm.conf", "bin/shop-serve" = "docker/shop-serve" }'
        COMMAND='["shop-serve", "127.0.0.1:{port}"]'
        ;;
    *) echo "quickstart: error: no example '$example' (hello or shop)" >&2; exit 2 ;;
esac

# The SVN working copy the quick start commits from.
WC=$STATE/$PROJECT-wc
[[ $mode == containers ]] && WC=$STATE/stack/wc
say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
die() { echo "quickstart: error: $*" >&2; exit 1; }

# shellcheck source=tests/lib/components.sh
source tests/lib/components.sh

ferry_cli() {
    FERRY_SERVER="http://127.0.0.1:$API_PORT" FERRY_TOKEN="$(<"$STATE/operator-token")" \
        FERRY_CONFIG="$STATE/ferry.toml" "$BIN/ferry" "$@"
}

pid_alive() { [[ -s "$1" ]] && kill -0 "$(<"$1")" 2>/dev/null; }

components_alive() {
    [[ -r "$STATE/env" ]] || return 1
    # shellcheck source=/dev/null
    source "$STATE/env"
    (exec 3<>"/dev/tcp/127.0.0.1/$FERRY_TEST_AMQP_PORT") 2>/dev/null || return 1
    local h
    for h in ${FERRY_TEST_DOCKER_HOSTS//,/ }; do
        docker -H "$h" version >/dev/null 2>&1 || return 1
    done
}

services_alive() {
    local s
    for s in "${SERVICES[@]}"; do pid_alive "$STATE/pids/ferry-$s.pid" || return 1; done
    pid_alive "$STATE/pids/smtp-sink.pid"
}

# A half-started earlier attempt is cleared, and its seeds with it; then what is missing
# is installed.
fresh_state() {
    (ferry_stop_all >/dev/null 2>&1) || true
    rm -rf "$STATE"
    mkdir -p "$STATE"
    ferry_install_missing
    "$PYTHON" -c 'import aiosmtpd' 2>/dev/null || apt-get install -y -q python3-aiosmtpd >/dev/null
}

start_components() {
    if components_alive; then
        say "components already running (state: $STATE)"
        return
    fi
    say "installing what is missing and starting RabbitMQ, registry, 2 Docker daemons, svnserve"
    fresh_state
    ferry_start_components rabbitmq dockerd:2 registry svnserve
    # shellcheck source=/dev/null
    source "$STATE/env"
}

build_ferry() {
    command -v cargo >/dev/null || die "cargo is missing: install Rust (https://rustup.rs) and run again"
    say "building Ferry (cargo build --profile $PROFILE; the first time takes a few minutes)"
    cargo build --profile "$PROFILE" --workspace --bins -q
}

random_token() { od -An -N24 -tx1 /dev/urandom | tr -d ' \n'; }

seed() {
    [[ -e "$STATE/seeded" ]] && return
    local hosts build_host url wc cfg
    IFS=, read -r -a hosts <<<"$FERRY_TEST_DOCKER_HOSTS"
    build_host=${hosts[0]}
    say "seeding the example project ($PROJECT): SVN repository, config repo, base images"
    if [[ $PROJECT == shop ]]; then
        # nginx + php-fpm and php-cli + composer + esbuild, from Debian's packages.
        mkdir -p "$STATE/logs"
        DOCKER_HOST=$build_host "$EXAMPLE_DIR/bases.sh" >/dev/null 2>>"$STATE/logs/bases.log" ||
            die "the shop's base images failed: see $STATE/logs/bases.log"
    else
        DOCKER_HOST=$build_host "$EXAMPLE_DIR/bases.sh"
    fi
    # The proxy in front of each environment (deploy/proxy): built on every deploy host,
    # as no registry serves it.
    local h
    for h in "${hosts[@]}"; do
        DOCKER_HOST=$h deploy/proxy/build.sh >/dev/null
    done
    url=$(tests/support/svn-repo.sh create "$PROJECT")
    wc=$WC
    rm -rf "$wc"
    local auth=(--username "$FERRY_TEST_SVN_USER" --password "$FERRY_TEST_SVN_PASSWORD" --non-interactive --no-auth-cache)
    svn checkout -q "${auth[@]}" "$url" "$wc"
    mkdir -p "$wc/trunk"
    cp -r "$EXAMPLE_DIR/app" "$wc/trunk/$PROJECT"
    svn add -q "$wc/trunk"
    svn commit -q "${auth[@]}" -m "$PROJECT: first version" "$wc"

    cfg="$STATE/config-repo"
    rm -rf "$cfg"
    mkdir -p "$cfg"
    cp -r "$EXAMPLE_DIR/config/$PROJECT" "$cfg/$PROJECT"
    git -C "$cfg" init -q -b main
    git -C "$cfg" add .
    git -C "$cfg" -c user.name=Ops -c user.email=ops@example.com commit -q -m "$PROJECT: ops config"

    random_token >"$STATE/svn-token"
    random_token >"$STATE/operator-token"
    chmod 600 "$STATE/svn-token" "$STATE/operator-token"
    write_config "$url" "${hosts[0]}" "${hosts[1]}"

    # The real post-commit hook, as an SVN admin installs it.
    local repo="$FERRY_TEST_SVN_ROOT/$PROJECT"
    cp deploy/hooks/svn-post-commit "$repo/hooks/post-commit"
    chmod 755 "$repo/hooks/post-commit"
    cat >"$repo/conf/ferry-hook.conf" <<CONF
FERRY_URL=http://127.0.0.1:$API_PORT/hooks/svn
FERRY_TOKEN=$(<"$STATE/svn-token")
FERRY_REPO_URL=$url
CONF
    chmod 600 "$repo/conf/ferry-hook.conf"
    echo "$PROJECT" >"$STATE/example"
    echo processes >"$STATE/mode"
    touch "$STATE/seeded"
}

# deploy/examples/notify-mail.toml for an SMTP server at HOST PORT.
mail_config() {
    sed -e "s/@SMTP_HOST@/$1/g" -e "s/@SMTP_PORT@/$2/g" -e "s/@SVN_USER@/$FERRY_TEST_SVN_USER/g" \
        deploy/examples/notify-mail.toml
}

write_config() {
    local url=$1 staging=$2 production=$3 s
    {
        cat <<TOML
# Written by deploy/quickstart.sh: the example project on two local Docker daemons.
[broker]
url = "amqp://guest:guest@127.0.0.1:$FERRY_TEST_AMQP_PORT/%2f"
namespace = "quickstart"

[hooks]
svn_token = "$(<"$STATE/svn-token")"

[operators.you]
token = "$(<"$STATE/operator-token")"
can = ["view", "deploy", "approve", "rollback"]

[build]
docker_host = "$staging"
work_dir = "$STATE/ferry/work"
log_dir = "$STATE/ferry/logs"
svn_username = "$FERRY_TEST_SVN_USER"
svn_password = "$FERRY_TEST_SVN_PASSWORD"

# Every event of every run, kept beyond the broker's history (README: the run ledger).
[ledger]
url = "sqlite://$STATE/ferry/ledger.db"

[registry]
address = "$FERRY_TEST_REGISTRY"
username = "$FERRY_TEST_REGISTRY_USER"
password = "$FERRY_TEST_REGISTRY_PASSWORD"

[docker_hosts.staging-1]
url = "$staging"

[docker_hosts.production-1]
url = "$production"

[environments.staging]
hosts = ["staging-1"]
ports = [18080, 18081]

[environments.production]
hosts = ["production-1"]
ports = [18090, 18091]

# HAProxy on each host: one stable port per environment (proxy_ports below) that always
# reaches the live release; a switch drains the old one before it stops.
[proxy]
bind_address = "127.0.0.1"
drain_timeout_secs = 10

[projects.$PROJECT]
image = "examples/$PROJECT"
environments = ["staging", "production"]
source = { kind = "svn", url = "$url", path = "/trunk/$PROJECT" }
config_repo = { url = "file://$STATE/config-repo", branch = "main", path = "$PROJECT", files = $FILES }

[projects.$PROJECT.container]
command = $COMMAND
health_path = "/healthz"
health_timeout_secs = 30
proxy_ports = { staging = 18088, production = 18098 }

TOML
        mail_config 127.0.0.1 "$SMTP_PORT"
        echo
        cat "$EXAMPLE_DIR/config/$PROJECT/tests.toml"
        echo
        local port=9680
        for s in "${SERVICES[@]}"; do
            port=$((port + 1))
            printf '[services.%s]\nadmin_listen = "127.0.0.1:%d"\n' "${s//-/_}" "$port"
            [[ "$s" == hook-receiver ]] && printf 'listen = "127.0.0.1:%d"\n' "$API_PORT"
        done
    } >"$STATE/ferry.toml"
    chmod 600 "$STATE/ferry.toml"
    "$BIN/ferry" --config "$STATE/ferry.toml" config check >/dev/null
}

start_services() {
    if services_alive; then
        say "Ferry's services already running"
        return
    fi
    say "starting the SMTP sink and Ferry's seven services"
    mkdir -p "$STATE/pids" "$STATE/logs" "$STATE/mail/cur" "$STATE/mail/new" "$STATE/mail/tmp"
    if ! pid_alive "$STATE/pids/smtp-sink.pid"; then
        ( exec </dev/null >>"$STATE/logs/smtp-sink.log" 2>&1
          exec "$PYTHON" -m aiosmtpd -n -l "127.0.0.1:$SMTP_PORT" -c aiosmtpd.handlers.Mailbox "$STATE/mail" ) &
        echo $! >"$STATE/pids/smtp-sink.pid"
    fi
    local s port=9680
    for s in "${SERVICES[@]}"; do
        port=$((port + 1))
        if ! pid_alive "$STATE/pids/ferry-$s.pid"; then
            ( exec </dev/null >>"$STATE/logs/ferry-$s.log" 2>&1
              FERRY_CONFIG="$STATE/ferry.toml" exec "$BIN/$s" ) &
            echo $! >"$STATE/pids/ferry-$s.pid"
        fi
    done
    # Ready = connected to RabbitMQ (each service's /readyz).
    local deadline=$((SECONDS + 60))
    port=9680
    for s in "${SERVICES[@]}"; do
        port=$((port + 1))
        until curl -fs "http://127.0.0.1:$port/readyz" >/dev/null; do
            pid_alive "$STATE/pids/ferry-$s.pid" || die "$s exited: see $STATE/logs/ferry-$s.log"
            ((SECONDS < deadline)) || die "$s not ready after 60 s: see $STATE/logs/ferry-$s.log"
            sleep 0.2
        done
    done
}

commit_change() {
    local wc=$WC rev run deadline
    local auth=(--username "$FERRY_TEST_SVN_USER" --password "$FERRY_TEST_SVN_PASSWORD" --non-interactive --no-auth-cache)
    if [[ $PROJECT == shop ]]; then
        # One PHP file changed: the image's code layers are rebuilt, vendor/ and assets not.
        echo "// changed at $(date -u +%H:%M:%S) by the quickstart" >>"$wc/trunk/$PROJECT/src/App.php"
    else
        echo "<p>changed at $(date -u +%H:%M:%S) by the quickstart</p>" >>"$wc/trunk/$PROJECT/public/index.html"
    fi
    rev=$(svn commit "${auth[@]}" -m "$PROJECT: a change shipped by the quickstart" "$wc" |
        sed -n 's/^Committed revision \([0-9]*\)\.$/\1/p')
    [[ -n "$rev" ]] || die "svn commit did not report a revision"
    say "committed r$rev to SVN; its post-commit hook told Ferry. The run:"
    deadline=$((SECONDS + 60))
    run=""
    until [[ -n "$run" ]]; do
        run=$(ferry_cli runs "$PROJECT" --output json 2>/dev/null |
            "$PYTHON" -c 'import json,sys; r=[x for x in json.load(sys.stdin)["runs"] if x.get("revision")==sys.argv[1]]; print(r[0]["run_id"] if r else "")' "$rev" || true)
        [[ -n "$run" ]] && break
        ((SECONDS < deadline)) || die "no run for r$rev after 60 s: see $FERRY_TEST_SVN_ROOT/$PROJECT/ferry-hook.log and $STATE/logs/ferry-hook-receiver.log"
        sleep 0.3
    done
    echo "run $run"
    ferry_cli watch "$run" --timeout-secs 600 || die "the run did not reach production: ferry runs $PROJECT"
}

show_where() {
    local mails
    mails=$(find "$STATE/mail" -type f 2>/dev/null | wc -l)
    cat <<EOF

Ferry is running. Look around:
  staging     curl http://127.0.0.1:18088/   (through the proxy; the release itself on :18080 or :18081)
  production  curl http://127.0.0.1:18098/   (through the proxy; the release on :18090 or :18091)
  dashboard   http://127.0.0.1:$API_PORT/   (sign in with the operator token in $STATE/operator-token)
  runs        FERRY_SERVER=http://127.0.0.1:$API_PORT FERRY_TOKEN=\$(cat $STATE/operator-token) $BIN/ferry runs $PROJECT
  status      $BIN/ferry --config $STATE/ferry.toml status $PROJECT
  mail        $mails message(s) in $STATE/mail/new (Ferry's notifications)
  logs        $STATE/logs/ferry-<service>.log, build logs in $STATE/ferry/logs
  metrics     curl http://127.0.0.1:9681/metrics   (9681…9687, one port per service)
  RabbitMQ    amqp://guest:guest@127.0.0.1:$FERRY_TEST_AMQP_PORT (namespace "quickstart")
Ship another commit: deploy/quickstart.sh commit      Stop it all: deploy/quickstart.sh stop
EOF
}

stop_all() {
    local s
    for s in "${SERVICES[@]}" smtp-sink; do
        local f="$STATE/pids/ferry-$s.pid"
        [[ $s == smtp-sink ]] && f="$STATE/pids/smtp-sink.pid"
        if pid_alive "$f"; then kill -TERM "$(<"$f")" 2>/dev/null || true; fi
    done
    sleep 1
    if [[ -r "$STATE/env" ]]; then
        ferry_stop_all
    fi
    say "stopped (state and logs kept in $STATE; delete it for a fresh start)"
}

if [[ $mode == containers ]]; then
    # shellcheck source=deploy/quickstart-containers.sh
    source deploy/quickstart-containers.sh
    running() { qc_services_alive; }
else
    running() { services_alive; }
fi

case "${1:-start}" in
start)
    if [[ $mode == containers ]]; then
        qc_start_components
        qc_prepare
        qc_services_alive || qc_start_services
    else
        start_components
        build_ferry
        seed
        start_services
    fi
    commit_change
    if [[ $mode == containers ]]; then qc_show_where; else show_where; fi
    ;;
commit)
    running || die "the stack is not running: deploy/quickstart.sh"
    # shellcheck source=/dev/null
    source "$STATE/env"
    commit_change
    ;;
status)
    running || die "the stack is not running: deploy/quickstart.sh"
    if [[ $mode == containers ]]; then
        qc_status
    else
        "$BIN/ferry" --config "$STATE/ferry.toml" status "$PROJECT"
    fi
    ferry_cli runs "$PROJECT" --limit 5
    ;;
stop) if [[ $mode == containers ]]; then qc_stop_all; else stop_all; fi ;;
*) usage ;;
esac
