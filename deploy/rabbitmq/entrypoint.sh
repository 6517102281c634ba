#!/bin/bash
# Start RabbitMQ, then make sure the topology is there and the user exists, then wait.
# The user is created (or its password set) on every start, so changing
# RABBITMQ_DEFAULT_PASS and restarting takes effect; the definitions import is
# idempotent. SIGTERM stops the node cleanly (rabbitmqctl stop), which keeps quorum
# queues' state consistent across `docker-compose down` / `up`.
set -euo pipefail
user=${RABBITMQ_DEFAULT_USER:-ferry}
pass=${RABBITMQ_DEFAULT_PASS:?set RABBITMQ_DEFAULT_PASS (the broker password the services use)}
ctl=/usr/lib/rabbitmq/bin/rabbitmqctl
pidfile=/var/lib/rabbitmq/rabbit.pid
export RABBITMQ_PID_FILE=$pidfile

/usr/lib/rabbitmq/bin/rabbitmq-server &
server=$!
stop() { "$ctl" stop "$pidfile" >/dev/null 2>&1 || kill "$server"; wait "$server"; exit 0; }
trap stop TERM INT

"$ctl" -q wait "$pidfile" --timeout 120
# The topology before the user: on a first start nothing can connect until the user
# exists, so no publish meets a missing queue (an unroutable event is refused).
"$ctl" -q import_definitions /etc/rabbitmq/definitions.json
if "$ctl" -q list_users | awk '{print $1}' | grep -qx "$user"; then
    "$ctl" -q change_password "$user" "$pass"
else
    "$ctl" -q add_user "$user" "$pass"
fi
"$ctl" -q set_user_tags "$user" administrator
"$ctl" -q set_permissions -p / "$user" '.*' '.*' '.*'
# The Debian package's guest user (loopback only) is not needed here.
"$ctl" -q delete_user guest >/dev/null 2>&1 || true
echo "ferry-rabbitmq: ready (user $user, definitions imported)"
wait "$server"
