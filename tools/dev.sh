#!/usr/bin/env bash
# `make dev`: the whole local stack in one command, with nothing installed but Go.
#   1. builds the pinned Inngest dev server on first use (tools/inngest/build.sh),
#   2. starts it with inngest.json (the app's serve URL, discovery off, port 8288),
#   3. starts the service against it with a development signing secret and the embedded
#      database (under ./data),
#   4. waits until the dev server has synced the app, prints the URLs,
#   5. and stops both on Ctrl-C.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

inngest_bin="$(tools/inngest/build.sh)"
export PORT="${PORT:-3000}"
export INNGEST_DEV="${INNGEST_DEV:-http://127.0.0.1:8288}"
# A development-only secret: `go run . send` signs with it when you export the same variable.
export CLERK_WEBHOOK_SIGNING_SECRET="${CLERK_WEBHOOK_SIGNING_SECRET:-whsec_ZGV2ZWxvcG1lbnQtb25seS1zZWNyZXQtZm9yLW1ha2UtZGV2}"
dev_port="${INNGEST_DEV##*:}"

echo "building the service..."
go build -o .bin/clerk-user-sync .

pids=()
stop() {
  trap - INT TERM EXIT
  echo
  echo "stopping..."
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "stopped."
  exit 0
}
trap stop INT TERM EXIT

"$inngest_bin" dev --config inngest.json --port "$dev_port" \
  -u "http://127.0.0.1:$PORT/api/inngest" >.bin/inngest-dev.log 2>&1 &
pids+=($!)
.bin/clerk-user-sync &
pids+=($!)

echo "waiting for the dev server to sync the app..."
for _ in $(seq 1 120); do
  if curl -fsS "http://127.0.0.1:$dev_port/v1/apps/clerk-user-sync/functions" 2>/dev/null | grep -q sync-user-from-clerk; then
    cat <<MSG

  service:            http://localhost:$PORT   (webhook: POST /api/webhooks/clerk)
  Inngest dev server: http://localhost:$dev_port  (its log: .bin/inngest-dev.log)

  Send a signed example event, in another terminal:
    CLERK_WEBHOOK_SIGNING_SECRET=$CLERK_WEBHOOK_SIGNING_SECRET go run . send user.created

  Ctrl-C stops both.
MSG
    wait -n "${pids[@]}" || true
    echo "a process exited; see the output above and .bin/inngest-dev.log" >&2
    exit 1
  fi
  sleep 1
done
echo "the dev server did not sync the app within 2 minutes; see .bin/inngest-dev.log" >&2
exit 1
