# Make targets for local work; CI runs .ci/run.
.PHONY: dev test inngest send bench

# The whole local stack: Inngest dev server + the service + embedded database.
dev:
	tools/dev.sh

# The test command (CI runs it too): builds the pinned Inngest dev server when missing (5-10
# minutes once, cached after) so that the end-to-end tests run, then every test.
test:
	INNGEST_BIN="$$(tools/inngest/build.sh)" go test ./...

# Build the pinned Inngest dev server into .bin/inngest.
inngest:
	tools/inngest/build.sh

# Send a signed example event to the running `make dev` stack: make send EVENT=user.created
EVENT ?= user.created
send:
	CLERK_WEBHOOK_SIGNING_SECRET=$${CLERK_WEBHOOK_SIGNING_SECRET:-whsec_ZGV2ZWxvcG1lbnQtb25seS1zZWNyZXQtZm9yLW1ha2UtZGV2} go run . send $(EVENT)

# The performance table (README, Performance): builds the dev server and the service first.
bench:
	tools/inngest/build.sh >/dev/null
	go build -o .bin/clerk-user-sync .
	go run ./bench
