#!/bin/bash
# MongoDB's entrypoint in docker-compose.prod.yml: writes the replica set's key file from
# MONGODB_REPLICA_KEY, then runs the image's own entrypoint (which creates the root user and
# runs /docker-entrypoint-initdb.d/ on an empty data directory, then starts mongod as the
# mongodb user). The key never appears on a command line: printf is a bash builtin.
set -euo pipefail

key=${MONGODB_REPLICA_KEY:-}
# mongod's rule for a key file: 6 to 1024 characters of the base64 set.
if ! [[ $key =~ ^[A-Za-z0-9+/=]{6,1024}$ ]]; then
	echo >&2 "MONGODB_REPLICA_KEY must be 6 to 1024 base64 characters (for example: openssl rand -hex 32)"
	exit 1
fi

# On the tmpfs the compose file mounts at /run/mongodb: readable by mongod's user only (mongod
# refuses a key file that others can read).
umask 077
mkdir -p /run/mongodb
printf '%s\n' "$key" > /run/mongodb/keyfile
chown -R mongodb:mongodb /run/mongodb
chmod 700 /run/mongodb
chmod 400 /run/mongodb/keyfile
unset key MONGODB_REPLICA_KEY

exec docker-entrypoint.sh "$@"
