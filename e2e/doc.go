// Package e2e is the black-box test suite of clerk-user-sync. Its tests build the binary once
// (TestMain), run it as a child process configured by its environment, as in production, and
// drive it over HTTP and through its commands: against an embedded FerretDB, stand-ins of
// Clerk's Backend API and Inngest's API, and the real Inngest dev server (INNGEST_BIN, else
// .bin/inngest at the repository root; tools/inngest/build.sh builds it).
//
// It holds no code besides its tests. `go test -short` skips them all, so the short tier
// needs neither the dev server nor the binary; without the dev server binary the tests that
// need it skip, except under CI, where they fail.
package e2e
