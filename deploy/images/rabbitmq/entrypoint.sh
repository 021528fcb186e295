#!/bin/bash
# Runs Debian's rabbitmq-server in the foreground, logging to stdout, with the default user taken
# from RABBITMQ_DEFAULT_USER/RABBITMQ_DEFAULT_PASS like the official image (Debian ignores them).
set -euo pipefail

if [[ $# -gt 0 ]]; then exec "$@"; fi

# Only used when the node's database is created, i.e. on the container's first start.
cat >/etc/rabbitmq/rabbitmq.conf <<CONF
default_user = ${RABBITMQ_DEFAULT_USER:-guest}
default_pass = ${RABBITMQ_DEFAULT_PASS:-guest}
loopback_users = none
listeners.tcp.default = 5672
management.tcp.port = 15672
CONF

# Debian's /usr/sbin/rabbitmq-server wrapper would send the log to a file: start the real script.
cd /var/lib/rabbitmq
exec setpriv --reuid=rabbitmq --regid=rabbitmq --init-groups env HOME=/var/lib/rabbitmq \
  /usr/lib/rabbitmq/bin/rabbitmq-server
