#!/usr/bin/env bash
# Ferry as containers on the compose host (tests/lib/compose-host.sh): the repository's own
# docker-compose.yml with the images deploy/images.sh builds, shipping an example (code in
# SVN, ops' Dockerfile, nginx config and .env in git) to the compose host's staging and
# production Docker hosts. Used by the containers test and by `deploy/quickstart.sh
# --containers`.
#
#   compose-stack.sh prepare DIR [OPTIONS]
#                                  images, base images, SVN and config repos, ferry.toml and
#                                  the compose environment in DIR (idempotent)
#       --example shop|hello       what to ship (default shop: deploy/examples/<name>)
#       --project-name NAME        docker-compose's project (default ferrytest)
#       --approval manual|auto     production's approval (default manual)
#       --smtp HOST:PORT           e-mail Ferry's notifications to an SMTP server there
#   compose-stack.sh compose DIR ARGS...
#                                  docker-compose ARGS with DIR's environment (up -d, restart
#                                  builder, down, ps, logs ...)
#
# DIR/env holds what a test needs: the API address and operator token, the SVN URL and
# credentials, the production address; DIR/wc is the SVN working copy. Reads the components'
# variables from $FERRY_TEST_STATE/env. FERRY_IMAGES_PROFILE picks the cargo profile of the
# binaries in the image (default release; the suite uses its debug build).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)

die() { echo "compose-stack.sh: error: $*" >&2; exit 1; }
[[ $# -ge 2 ]] || die "usage: compose-stack.sh prepare|compose DIR [ARGS...]"
cmd=$1 dir=$2
shift 2
[[ -r "${FERRY_TEST_STATE:?set FERRY_TEST_STATE}/env" ]] || die "no components under $FERRY_TEST_STATE"
# shellcheck source=/dev/null
source "$FERRY_TEST_STATE/env"
: "${FERRY_TEST_COMPOSE_DOCKER_HOST:?start the compose host first (ferry_start_components compose-host)}"
export DOCKER_HOST=$FERRY_TEST_COMPOSE_DOCKER_HOST
project=shop compose_project=ferrytest approval=manual smtp=

compose() {
    # shellcheck source=/dev/null
    set -a && source "$dir/compose.env" && set +a
    docker-compose --project-directory "$ROOT" -f "$ROOT/docker-compose.yml" "$@"
}

random_token() { od -An -N24 -tx1 /dev/urandom | tr -d ' \n'; }

seed_repos() {
    local url wc cfg auth
    auth=(--username "$FERRY_TEST_SVN_USER" --password "$FERRY_TEST_SVN_PASSWORD" --non-interactive --no-auth-cache)
    "$FERRY_TEST_SVN_REPO_SCRIPT" create compose-$project >/dev/null
    url="$FERRY_TEST_COMPOSE_SVN_URL/compose-$project"
    wc="$dir/wc"
    svn checkout -q "${auth[@]}" "$url" "$wc"
    mkdir -p "$wc/trunk"
    cp -r "$ROOT/deploy/examples/$project/app" "$wc/trunk/$project"
    svn add -q "$wc/trunk"
    svn commit -q "${auth[@]}" -m "$project: first version" "$wc"

    cfg="$FERRY_TEST_COMPOSE_GIT_ROOT/config.git"
    rm -rf "$cfg" "$dir/config-wc"
    mkdir -p "$dir/config-wc"
    cp -r "$ROOT/deploy/examples/$project/config/$project" "$dir/config-wc/$project"
    git -C "$dir/config-wc" init -q -b main
    git -C "$dir/config-wc" add .
    git -C "$dir/config-wc" -c user.name=Ops -c user.email=ops@example.com commit -q -m "$project: ops config"
    git clone -q --bare "$dir/config-wc" "$cfg"

    # The real post-commit hook, posting to the containerised hook-receiver.
    local repo="$FERRY_TEST_SVN_ROOT/compose-$project"
    cp "$ROOT/deploy/hooks/svn-post-commit" "$repo/hooks/post-commit"
    chmod 755 "$repo/hooks/post-commit"
    cat >"$repo/conf/ferry-hook.conf" <<CONF
FERRY_URL=http://127.0.0.1:8080/hooks/svn
FERRY_TOKEN=$(<"$dir/svn-token")
FERRY_REPO_URL=$url
# Ride out a restart of the hook-receiver (the test restarts it during a run): 1+2+...+5 s.
FERRY_ATTEMPTS=6
CONF
    chmod 600 "$repo/conf/ferry-hook.conf"
}

write_config() {
    local addr=$FERRY_TEST_COMPOSE_ADDR files command
    # 0.0.0.0 / any address: the tester, a container on the engine's bridge, reaches the
    # app at the deploy host's address.
    case $project in
        shop)
            files='{ "env/production.env" = ".env", "nginx/site.conf" = "docker/nginx.conf", "nginx/nginx-main.conf" = "docker/nginx-main.conf", "php/fpm.conf" = "docker/php-fpm.conf", "bin/shop-serve" = "docker/shop-serve" }'
            command='["shop-serve", "0.0.0.0:{port}"]' ;;
        hello)
            files='{ "env/production.env" = ".env" }'
            command='["/bin/httpd", "-f", "-p", "{port}", "-h", "/www"]' ;;
    esac
    cat >"$dir/ferry.toml" <<TOML
# Written by tests/support/compose-stack.sh: Ferry as containers on the compose host.
# broker.url comes from docker-compose.yml (FERRY__BROKER__URL).
[broker]
url = "amqp://set-by-compose"

[hooks]
svn_token = "$(<"$dir/svn-token")"

[operators.tester]
token = "$(<"$dir/operator-token")"
can = ["view", "deploy", "approve", "rollback"]

# On the compose file's ledger volume, as deploy/ferry.example.toml has it.
[ledger]
url = "sqlite:///var/lib/ferry/ledger/ferry.db"

[build]
docker_host = "unix:///var/run/docker.sock"
work_dir = "/var/lib/ferry/work"
log_dir = "/var/lib/ferry/logs"
svn_username = "$FERRY_TEST_SVN_USER"
svn_password = "$FERRY_TEST_SVN_PASSWORD"

# The compose file's registry: published on the engine's loopback only, and without auth
# there (Ferry sends these; the registry does not ask).
[registry]
address = "127.0.0.1:5000"
username = "ferry"
password = "unused-by-this-registry"

[docker_hosts.staging-1]
url = "tcp://$addr:2376"
tls_dir = "/etc/ferry/docker-certs/compose-hosts"

[docker_hosts.production-1]
url = "tcp://$addr:2377"
tls_dir = "/etc/ferry/docker-certs/compose-hosts"

[environments.staging]
hosts = ["staging-1"]
ports = [18080, 18081]

[environments.production]
hosts = ["production-1"]
ports = [18090, 18091]
approval = "$approval"

[projects.$project]
image = "examples/$project"
environments = ["staging", "production"]
source = { kind = "svn", url = "$FERRY_TEST_COMPOSE_SVN_URL/compose-$project", path = "/trunk/$project" }
config_repo = { url = "$FERRY_TEST_COMPOSE_GIT_URL/config.git", branch = "main", path = "$project", files = $files }

[projects.$project.container]
command = $command
health_path = "/healthz"
health_timeout_secs = 30

TOML
    if [[ -n "$smtp" ]]; then
        sed -e "s/@SMTP_HOST@/${smtp%:*}/g" -e "s/@SMTP_PORT@/${smtp##*:}/g" \
            -e "s/@SVN_USER@/$FERRY_TEST_SVN_USER/g" "$ROOT/deploy/examples/notify-mail.toml" >>"$dir/ferry.toml"
        echo >>"$dir/ferry.toml"
    fi
    cat "$ROOT/deploy/examples/$project/config/$project/tests.toml" >>"$dir/ferry.toml"
    chmod 644 "$dir/ferry.toml"
}

prepare() {
    while [[ $# -gt 0 ]]; do
        case $1 in
            --example) project=${2:?}; shift 2 ;;
            --project-name) compose_project=${2:?}; shift 2 ;;
            --approval) approval=${2:?}; shift 2 ;;
            --smtp) smtp=${2:?}; shift 2 ;;
            *) die "unknown option $1" ;;
        esac
    done
    [[ -d "$ROOT/deploy/examples/$project" ]] || die "no example '$project' (shop or hello)"
    [[ $approval == manual || $approval == auto ]] || die "--approval is manual or auto"
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd -P)
    FERRY_CARGO_PROFILE=${FERRY_IMAGES_PROFILE:-release} "$ROOT/deploy/images.sh" >"$dir/images.txt"
    # The example's base images on the build engine (the shop's: nginx + php-fpm; php-cli +
    # composer + esbuild, from Debian's packages).
    "$ROOT/deploy/examples/$project/bases.sh" >/dev/null
    if [[ ! -e "$dir/seeded" ]]; then
        random_token >"$dir/svn-token"
        random_token >"$dir/operator-token"
        random_token >"$dir/rabbitmq-password"
        seed_repos
        touch "$dir/seeded"
    fi
    write_config
    # The deploy hosts' client certificate, where the compose file mounts FERRY_DOCKER_CERTS.
    mkdir -p "$dir/docker-certs/compose-hosts"
    cp "$FERRY_TEST_COMPOSE_TLS_DIR"/*.pem "$dir/docker-certs/compose-hosts/"
    chmod -R a+rX "$dir/docker-certs"
    cat >"$dir/compose.env" <<ENV
COMPOSE_PROJECT_NAME=$compose_project
DOCKER_HOST=$FERRY_TEST_COMPOSE_DOCKER_HOST
FERRY_CONFIG_FILE=$dir/ferry.toml
FERRY_DOCKER_CERTS=$dir/docker-certs
FERRY_DOCKER_SOCKET=${FERRY_TEST_COMPOSE_DOCKER_HOST#unix://}
DOCKER_GID=$(stat -c %g "${FERRY_TEST_COMPOSE_DOCKER_HOST#unix://}")
FERRY_RABBITMQ_PASSWORD=$(<"$dir/rabbitmq-password")
ENV
    cat >"$dir/env" <<ENV
export FERRY_COMPOSE_API=http://$FERRY_TEST_COMPOSE_ADDR:8080
export FERRY_COMPOSE_TOKEN=$(<"$dir/operator-token")
export FERRY_COMPOSE_ADDR=$FERRY_TEST_COMPOSE_ADDR
ENV
}

case $cmd in
    prepare) prepare "$@" ;;
    compose) dir=$(cd "$dir" && pwd -P); compose "$@" ;;
    *) die "unknown command $cmd" ;;
esac
