package main

import (
	"time"
	"unicode/utf8"

	"clerksync/httpapi"
)

// The HTTP edge moved to httpapi; the root tests that start the whole service use these
// names of it.

// syncedUser is the answer of POST /api/sync/users/{id}.
type syncedUser = httpapi.SyncedUser

// inngestSyncTimeout is how long the guard of /api/inngest waits for a sync's registration
// with Inngest before answering 504 (httpapi's inngestSyncTimeout), for failure messages.
const inngestSyncTimeout = 8 * time.Second

// cutForLog returns s for a failure message: whole when it is at most n bytes, else its first
// n bytes at most (to a UTF-8 boundary) marked as cut.
func cutForLog(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…(cut)"
}
