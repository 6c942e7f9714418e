#!/bin/sh
# Redis's entrypoint in docker-compose.prod.yml: writes the ACL file that deploy/redis.conf
# names (aclfile) from REDIS_PASSWORD, then runs the image's own entrypoint (which starts
# redis-server as the redis user). The password never appears on a command line (printf is a
# shell builtin) nor in the repository.
set -eu

password=${REDIS_PASSWORD:-}
# The password goes into the ACL file after '>' and into Inngest's redis:// URI: no spaces,
# nothing a URI would need escaped.
case $password in
'' | *[!A-Za-z0-9._~-]*)
	echo >&2 "REDIS_PASSWORD must be set, and URL-safe (letters, digits, . _ ~ -; for example: openssl rand -hex 32)"
	exit 1
	;;
esac

# On the tmpfs the compose file mounts at /run/redis: readable by Redis's user only. The
# default user is the one Inngest and the health check (REDISCLI_AUTH) authenticate as; an
# ACL file without it would leave it on with no password.
umask 077
mkdir -p /run/redis
printf 'user default on >%s ~* &* +@all\n' "$password" > /run/redis/users.acl
chown -R redis:redis /run/redis
unset password REDIS_PASSWORD REDISCLI_AUTH

exec docker-entrypoint.sh "$@"
