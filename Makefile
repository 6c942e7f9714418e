# Make targets for local work; CI runs .ci/run.
.PHONY: dev test inngest send bench scale-test reconcile-scale

# The whole local stack: Inngest dev server + the service + embedded database.
dev:
	tools/dev.sh

# The test command (CI runs it too), in two tiers. The short tier is every package's tests
# without the dev server (`go test -short ./...` alone is the quick check: e2e/ skips). The
# end-to-end tier is e2e/: it builds the pinned Inngest dev server when missing (5-10 minutes
# once, cached after) and the service's binary, and drives both from the outside: the serve
# mode tests, then the Connect mode tests (TestConnect*). Each part runs its tests in
# parallel; run together, the two parts' bursts overload 2 cores and time out.
test:
	go test -short ./...
	INNGEST_BIN="$$(tools/inngest/build.sh)" go test -timeout 20m -skip '^TestConnect' ./e2e/
	INNGEST_BIN="$$(tools/inngest/build.sh)" go test -timeout 20m -run '^TestConnect' ./e2e/

# Build the pinned Inngest server (tools/inngest) into .bin/inngest.
inngest:
	tools/inngest/build.sh

# Send a signed example event to the running `make dev` stack: make send EVENT=user.created
EVENT ?= user.created
send:
	CLERK_WEBHOOK_SIGNING_SECRET=$${CLERK_WEBHOOK_SIGNING_SECRET:-whsec_ZGV2ZWxvcG1lbnQtb25seS1zZWNyZXQtZm9yLW1ha2UtZGV2} go run . send $(EVENT)

# The performance table (docs/performance.md): builds the dev server and the service first.
# Row 1 runs for each payload size and concurrency, rows 1 and 2 three times (medians):
# make bench BENCH_ARGS="-rows 1 -payload 1200,2000 -c 16,32 -runs 3"; go run ./bench -h lists them.
BENCH_ARGS ?=
bench:
	tools/inngest/build.sh >/dev/null
	go build -o .bin/clerk-user-sync .
	go run ./bench $(BENCH_ARGS)

# The scale test (not part of `make test`): `inngest start` on PostgreSQL and Redis (installed with
# apt-get when missing), one FerretDB server, 1 then 3 replicas of the service behind a load
# balancer, each count in serve mode and in Connect mode, 5,000 sign-ups plus updates, deletes and
# duplicates, a replica killed mid-burst; checks the database against the model and prints the
# throughput table, both modes side by side. Smaller or other runs:
# make scale-test SCALE_ARGS="-users 500 -replicas 3 -modes connect" (tools/scale, `-h` lists the flags).
SCALE_ARGS ?=
scale-test:
	go build -o .bin/clerk-user-sync .
	go build -o .bin/scale-test ./tools/scale
	.bin/scale-test -inngest "$$(tools/inngest/build.sh)" $(SCALE_ARGS)

# The reconciliation's scale measurement (not part of `make test`; docs/reconciliation.md, At scale:
# measured): clerkfake serves N generated users with Clerk's rate limit and page size, the service
# and the real dev server (serve mode) run one reconciliation, then `backfill` imports the same users
# into a fresh database; it prints wall time, Clerk requests, steps, step output and state sizes and
# peak RSS per size. Other sizes or settings (tools/reconcile-scale, `-h` lists the flags):
# make reconcile-scale RECONCILE_SCALE_ARGS="-users 1000000 -preload 0.5 -rate 100 -timeout 20m"
RECONCILE_SCALE_ARGS ?=
reconcile-scale:
	go build -o .bin/clerk-user-sync .
	go build -o .bin/reconcile-scale ./tools/reconcile-scale
	.bin/reconcile-scale -inngest "$$(tools/inngest/build.sh)" $(RECONCILE_SCALE_ARGS)
