#!/usr/bin/env bash
# Builds the pinned Inngest server (see go.mod here; main.go is its command, with settable
# Connect gRPC ports) into .bin/inngest at the repository root, from the Go module proxy. It
# rebuilds only when the binary is missing or the pin (go.mod, go.sum, main.go) changed. The first build takes 5 to 10 minutes; later ones are cached.
# Prints the binary's path.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
bin="$root/.bin/inngest"
stamp="$root/.bin/inngest.pin"
pin="$(cat "$here/go.mod" "$here/go.sum" "$here/main.go" | sha256sum | cut -d' ' -f1)"

if [ -x "$bin" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$pin" ]; then
  echo "$bin"
  exit 0
fi
echo "building the Inngest dev server into $bin (the first build takes 5-10 minutes)..." >&2
mkdir -p "$root/.bin"
(cd "$here" && go build -o "$bin.tmp" .)
mv "$bin.tmp" "$bin"
echo "$pin" > "$stamp"
echo "$bin"
