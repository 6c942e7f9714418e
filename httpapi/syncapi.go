package httpapi

import (
	"context"
	"crypto/subtle"
	"errors"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"clerksync/clerk"
	"clerksync/reconcile"
	"clerksync/store"
)

// SyncUser is what POST /api/sync/users/:id needs: the bearer token callers must send, Clerk's
// Backend API, the store, and the metrics.
type SyncUser struct {
	// Token is SYNC_API_TOKEN; a request without it gets 401 (as does every request when it
	// is empty).
	Token string
	// Clerk reads the user and the key's Clerk instance.
	Clerk SyncClerk
	// Store is written to and read from.
	Store SyncStore
	// Metrics counts each request; nil counts nothing.
	Metrics SyncMetrics
}

// SyncClerk is what the on-demand sync needs of Clerk's Backend API (clerk.API implements it):
// the user, and the Clerk instance of the key.
type SyncClerk interface {
	GetUser(ctx context.Context, id string) (clerk.User, error)
	InstanceID(ctx context.Context) (string, error)
}

// SyncStore is the storage the on-demand sync writes to and reads from (store.Store implements
// it): the guarded upsert, the read back, and the Clerk instance the database follows.
type SyncStore interface {
	UpsertUser(ctx context.Context, u store.User) (store.Outcome, error)
	Get(ctx context.Context, id string) (store.User, error)
	ClerkInstance(ctx context.Context) (string, error)
}

// SyncMetrics counts the on-demand syncs: one call per request, with its result (one of
// SyncResults) and how long the answer took.
type SyncMetrics interface {
	SyncRequest(result string, elapsed time.Duration)
}

// nopSyncMetrics counts nothing.
type nopSyncMetrics struct{}

func (nopSyncMetrics) SyncRequest(string, time.Duration) {}

// Results of POST /api/sync/users/:id, the label values of clerksync_sync_requests_total.
const (
	syncSynced           = "synced"            // 200: written or skipped, the stored user answered
	syncGone             = "gone"              // 410: the user is deleted
	syncNotFound         = "not_found"         // 404: Clerk has no such user
	syncUnauthorized     = "unauthorized"      // 401: missing or wrong bearer token
	syncInvalidID        = "invalid_id"        // 400: not a Clerk user id
	syncOtherInstance    = "other_instance"    // 409: CLERK_SECRET_KEY is another instance's
	syncKeyRefused       = "clerk_key_refused" // 503, long Retry-After: Clerk answered 401
	syncRateLimited      = "rate_limited"      // 503: Clerk's 429, its Retry-After passed on
	syncClerkUnavailable = "clerk_unavailable" // 503: Clerk or the network failed
	syncOtherUser        = "other_user"        // 502: Clerk's answer is another user
	syncUnstorable       = "unstorable"        // 422: Clerk's user cannot be stored
	syncDBUnavailable    = "database_unavailable"
)

// SyncResults returns every result of POST /api/sync/users/:id (the label values of
// clerksync_sync_requests_total), so that each series can exist from the start.
func SyncResults() []string {
	return []string{syncSynced, syncGone, syncNotFound, syncUnauthorized, syncInvalidID, syncOtherInstance,
		syncKeyRefused, syncRateLimited, syncClerkUnavailable, syncOtherUser, syncUnstorable, syncDBUnavailable}
}

// SyncedUser is the stored user as POST /api/sync/users/:id answers it.
type SyncedUser struct {
	ID             string  `json:"id"`
	Email          *string `json:"email"`
	FullName       string  `json:"full_name"`
	Username       string  `json:"username,omitempty"`
	ProfilePicture string  `json:"profile_picture,omitempty"`
	CreatedAt      int64   `json:"created_at"`
	UpdatedAt      int64   `json:"updated_at"`
	Deleted        bool    `json:"deleted,omitempty"`
	// Outcome is what this call's write did: inserted, updated (also a repair of this version,
	// store.User.Repair), or skipped (the database already had this version or a newer one, or
	// a deletion).
	Outcome store.Outcome `json:"outcome"`
}

// syncTimeout bounds one on-demand sync: Clerk's answer and the write.
const syncTimeout = 10 * time.Second

// keyRefusedRetryAfter is the Retry-After (seconds) of the answer to a sync while Clerk refuses
// CLERK_SECRET_KEY. Only an operator can end that state (a new key, a restart), so asking
// again every second only sends Clerk more requests with a refused key.
const keyRefusedRetryAfter = 300

// configLogEvery is how often at most a configuration error that every request meets (a
// refused key, another instance's key) is logged; the metric counts each request.
const configLogEvery = time.Minute

// userIDPattern is the shape of a Clerk user id: user_ and base62 characters (27 today, such
// as user_29w83sxmDNGwOuEthce5gg56FcC), with room to grow.
var userIDPattern = regexp.MustCompile(`^user_[A-Za-z0-9]{1,64}$`)

// invalidIDMessage is the 400 answer's error; it does not repeat the id.
const invalidIDMessage = "not a Clerk user id: want user_ followed by 1 to 64 letters or digits, such as user_29w83sxmDNGwOuEthce5gg56FcC"

// keyRefusedMessage is the error answered while Clerk refuses CLERK_SECRET_KEY.
const keyRefusedMessage = "Clerk refused this service's CLERK_SECRET_KEY (401): the key is wrong or revoked. " +
	"This is the service's configuration, not the request: its operator must set a valid key; asking again before that fails the same way."

// handleSyncUser is POST /api/sync/users/:id: an application that finds a signed-in user
// missing from its database (the webhook has not landed yet) asks for that user now. With the
// bearer token, it reads the user from Clerk's Backend API and writes it through the same
// guarded upsert as the webhooks (never over a newer write, never reviving a deleted user),
// then answers the stored document. It answers 401 without the token, 400 for an id that is
// not a Clerk user id (user_ and 1 to 64 letters or digits; nothing is sent to Clerk), 404
// when Clerk has no such user, 410 when the user was deleted, 409 when CLERK_SECRET_KEY
// belongs to another Clerk instance than the database follows, 502 when Clerk's answer is
// another user than asked (nothing written), and 503 with Retry-After when Clerk or the
// database cannot answer now.
//
// When Clerk refuses CLERK_SECRET_KEY (401), it answers 503 with Retry-After: 300 and an error
// saying so, logs at error (once a minute at most) and counts clerk_key_refused: 503, not
// 500, because the failure is the service's and ends without any change by the caller once
// the operator sets a valid key; the long Retry-After, because a retry every second cannot
// succeed before then and only sends Clerk more requests with a refused key.
//
// Concurrent requests share one check of the Clerk instance (reconcile.InstanceCheck.Passed),
// and no lock is held across a call to Clerk or the database. Each request is counted in d.Metrics.
func handleSyncUser(d SyncUser, logger *slog.Logger) echo.HandlerFunc {
	h := &syncHandler{
		token: d.Token, api: d.Clerk, db: d.Store, logger: logger,
		check:         reconcile.NewInstanceCheck(d.Clerk, d.Store, syncTimeout),
		keyRefusedLog: &throttledLog{every: configLogEvery},
		otherInstLog:  &throttledLog{every: configLogEvery},
	}
	m := d.Metrics
	if m == nil {
		m = nopSyncMetrics{}
	}
	return func(c echo.Context) error {
		start := time.Now()
		result, err := h.serve(c)
		m.SyncRequest(result, time.Since(start))
		return err
	}
}

// syncHandler is the state of POST /api/sync/users/:id.
type syncHandler struct {
	token  string
	api    SyncClerk
	db     SyncStore
	logger *slog.Logger
	check  *reconcile.InstanceCheck
	// keyRefusedLog and otherInstLog hold back repeats of configuration errors.
	keyRefusedLog, otherInstLog *throttledLog
}

// serve answers one request, and returns its result (one of SyncResults) and the error of
// writing the answer.
func (h *syncHandler) serve(c echo.Context) (string, error) {
	got, ok := strings.CutPrefix(c.Request().Header.Get("Authorization"), "Bearer ")
	if !ok || h.token == "" || subtle.ConstantTimeCompare([]byte(got), []byte(h.token)) != 1 {
		c.Response().Header().Set("WWW-Authenticate", `Bearer realm="clerk-user-sync"`)
		return syncUnauthorized, c.JSON(http.StatusUnauthorized, map[string]string{"error": "missing or wrong bearer token; send Authorization: Bearer <SYNC_API_TOKEN>"})
	}
	id := c.Param("id")
	if !userIDPattern.MatchString(id) {
		h.logger.Warn("on-demand sync: refused an id that is not a Clerk user id", "route", "sync",
			"id", cutForLog(id, 40), "id_bytes", len(id))
		return syncInvalidID, c.JSON(http.StatusBadRequest, map[string]string{"error": invalidIDMessage})
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), syncTimeout)
	defer cancel()
	log := h.logger.With("user_id", id, "route", "sync")

	if err := h.check.Passed(ctx); err != nil {
		var wrong *reconcile.WrongInstanceError
		if errors.As(err, &wrong) {
			h.otherInstLog.log(log, slog.LevelError, "on-demand sync refused", "error", err)
			return syncOtherInstance, c.JSON(http.StatusConflict, map[string]string{"error": otherInstanceMessage(wrong)})
		}
		return h.clerkFailed(c, log, err, "checking the Clerk instance failed", "could not check the Clerk instance; retry")
	}
	cu, err := h.api.GetUser(ctx, id)
	switch {
	case errors.Is(err, clerk.ErrUserNotFound):
		return syncNotFound, c.JSON(http.StatusNotFound, map[string]string{"error": "Clerk has no user " + id})
	case errors.Is(err, clerk.ErrOtherUser):
		log.Error("on-demand sync: Clerk's answer is another user than asked; nothing written", "error", err)
		return syncOtherUser, c.JSON(http.StatusBadGateway, map[string]string{"error": "Clerk's answer was another user than " + id + "; nothing was written"})
	case err != nil:
		return h.clerkFailed(c, log, err, "reading the user from Clerk failed", "could not read the user from Clerk; retry")
	}
	su, err := cu.StoreUser(0)
	if err != nil {
		log.Warn("on-demand sync: Clerk's user cannot be stored", "error", err)
		return syncUnstorable, c.JSON(http.StatusUnprocessableEntity, map[string]string{"error": "Clerk's user cannot be stored: " + err.Error()})
	}
	su.Repair = true // Clerk's record: it also repairs a stored user of the same updated_at
	out, err := h.db.UpsertUser(ctx, su)
	if err != nil {
		log.Error("on-demand sync: writing the user failed", "error", err)
		return syncDBUnavailable, unavailable(c, 1, "could not write the user; retry")
	}
	stored, err := h.db.Get(ctx, id)
	if err != nil {
		log.Error("on-demand sync: reading the user back failed", "error", err)
		return syncDBUnavailable, unavailable(c, 1, "could not read the user back; retry")
	}
	log.Info("user synced on demand", "outcome", out)
	body := SyncedUser{
		ID: stored.ID, Email: stored.Email, FullName: stored.FullName, Username: stored.Username,
		ProfilePicture: stored.ProfilePicture, CreatedAt: stored.CreatedAt, UpdatedAt: stored.UpdatedAt,
		Deleted: stored.Deleted, Outcome: out,
	}
	if stored.Deleted {
		return syncGone, c.JSON(http.StatusGone, body)
	}
	return syncSynced, c.JSON(http.StatusOK, body)
}

// clerkFailed answers a failed call to Clerk (or, for the instance check, to the database):
// the refused key, Clerk's rate limit, or a failure worth retrying soon (msg). what says, in
// the log, what failed.
func (h *syncHandler) clerkFailed(c echo.Context, log *slog.Logger, err error, what, msg string) (string, error) {
	var rl *clerk.RateLimitedError
	switch {
	case errors.Is(err, clerk.ErrKeyRefused):
		h.keyRefusedLog.log(log, slog.LevelError, "on-demand sync: Clerk refused CLERK_SECRET_KEY (401); set a valid secret key from Clerk Dashboard -> API keys", "error", err)
		return syncKeyRefused, unavailable(c, keyRefusedRetryAfter, keyRefusedMessage)
	case errors.As(err, &rl):
		return syncRateLimited, unavailable(c, max(1, int(rl.RetryAfter.Seconds())), "Clerk's rate limit; retry after the Retry-After delay")
	case errors.Is(err, store.ErrDatabase):
		log.Warn("on-demand sync: "+what, "error", err)
		return syncDBUnavailable, unavailable(c, 1, msg)
	default:
		log.Warn("on-demand sync: "+what, "error", err)
		return syncClerkUnavailable, unavailable(c, 1, msg)
	}
}

// unavailable answers 503 with a Retry-After of retryAfter seconds and msg.
func unavailable(c echo.Context, retryAfter int, msg string) error {
	c.Response().Header().Set("Retry-After", strconv.Itoa(retryAfter))
	return c.JSON(http.StatusServiceUnavailable, map[string]string{"error": msg})
}

// throttledLog logs one line per period at most; the next line after held-back ones says how
// many (held_back).
type throttledLog struct {
	every time.Duration

	mu   sync.Mutex
	last time.Time
	held int
}

// log writes msg and args to logger at level, unless a line went out less than every ago.
func (t *throttledLog) log(logger *slog.Logger, level slog.Level, msg string, args ...any) {
	t.mu.Lock()
	now := time.Now()
	if !t.last.IsZero() && now.Sub(t.last) < t.every {
		t.held++
		t.mu.Unlock()
		return
	}
	held := t.held
	t.last, t.held = now, 0
	t.mu.Unlock()
	if held > 0 {
		args = append(args, "held_back", held)
	}
	logger.Log(context.Background(), level, msg, args...)
}

// otherInstanceMessage is the 409 answer's error while CLERK_SECRET_KEY reads another Clerk
// instance than the database follows.
func otherInstanceMessage(e *reconcile.WrongInstanceError) string {
	return "CLERK_SECRET_KEY belongs to another Clerk instance than the one this database follows; see forget-clerk-instance\n" +
		"key's instance " + e.Key + ", database's " + e.Recorded
}
