#!/usr/bin/env bash
# The job Ferry replaces, as the old chain's Jenkins job ran it, step after step: the
# baseline of `commit_to_prod_over_shell` (tests/bench/src/shell_job.rs runs it).
#   svn export + the config repo's files laid over it, docker build, login + push, pull on
#   both hosts at once, then for staging and for production: start the new container,
#   wait for its health, check the page, remove the old one.
# Environment (all required): SVN_URL, REVISION, SVN_USER, SVN_PASSWORD, CONFIG_DIR (the
# config repo's project folder), OVERLAY ("from=to from=to ..."), BUILD_HOST,
# STAGING_HOST, PRODUCTION_HOST (docker -H values), IMAGE (registry/repository),
# REGISTRY, REGISTRY_USER, REGISTRY_PASSWORD, NAME (container name prefix),
# STAGING_PORTS, PRODUCTION_PORTS ("a b": blue/green), RUN_ARGS (after the image:
# the container's command, with {port}), HEALTH_PATH, PAGE_PATH, PAGE_EXPECT (a text the
# page must contain; {revision} is the revision).
set -euo pipefail

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export DOCKER_CONFIG=$work/docker

svn export -q --non-interactive --no-auth-cache --username "$SVN_USER" --password "$SVN_PASSWORD" \
    -r "$REVISION" "$SVN_URL" "$work/ctx"
for pair in $OVERLAY; do
    mkdir -p "$(dirname "$work/ctx/${pair#*=}")"
    cp "$CONFIG_DIR/${pair%%=*}" "$work/ctx/${pair#*=}"
done

image=$IMAGE:$REVISION
docker -H "$BUILD_HOST" build -q --build-arg "FERRY_REVISION=$REVISION" -t "$image" "$work/ctx" >/dev/null
echo "$REGISTRY_PASSWORD" | docker -H "$BUILD_HOST" login -u "$REGISTRY_USER" --password-stdin "$REGISTRY" >/dev/null 2>&1
docker -H "$BUILD_HOST" push -q "$image" >/dev/null

docker -H "$STAGING_HOST" pull -q "$image" >/dev/null &
staging_pull=$!
docker -H "$PRODUCTION_HOST" pull -q "$image" >/dev/null &
production_pull=$!
wait "$staging_pull" "$production_pull"

# deploy HOST ENV "PORT_A PORT_B": the new container on the port the old one does not use.
deploy() {
    local host=$1 env=$2 ports=($3) old port
    old=$(docker -H "$host" ps -q --filter "label=shelljob=$NAME-$env")
    port=${ports[0]}
    if [[ -n $old ]] && [[ $(docker -H "$host" inspect -f '{{index .Config.Labels "shelljob.port"}}' "$old") == "$port" ]]; then
        port=${ports[1]}
    fi
    docker -H "$host" run -d -q --network host --name "$NAME-$env-$REVISION" \
        --label "shelljob=$NAME-$env" --label "shelljob.port=$port" \
        "$image" ${RUN_ARGS//\{port\}/$port} >/dev/null
    local url=http://127.0.0.1:$port
    for _ in $(seq 200); do
        curl -fsS -o /dev/null "$url$HEALTH_PATH" 2>/dev/null && break
        sleep 0.05
    done
    local page expect=${PAGE_EXPECT//\{revision\}/$REVISION}
    page=$(curl -fsS "$url$PAGE_PATH")
    [[ $page == *"$expect"* ]] || { echo "$env: the page does not say $expect: $page" >&2; exit 1; }
    if [[ -n $old ]]; then
        docker -H "$host" rm -f $old >/dev/null
    fi
}
deploy "$STAGING_HOST" staging "$STAGING_PORTS"
deploy "$PRODUCTION_HOST" production "$PRODUCTION_PORTS"
