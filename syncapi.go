package main

import (
	"context"
	"crypto/subtle"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"clerksync/clerk"
	"clerksync/store"
)

// userSyncer is what POST /api/sync/users/:id needs: Clerk's user, and the store's guarded
// upsert and read.
type userSyncer interface {
	GetUser(ctx context.Context, id string) (clerk.User, error)
	InstanceID(ctx context.Context) (string, error)
}

// syncStore is the storage the on-demand sync writes to and reads from.
type syncStore interface {
	UpsertUser(ctx context.Context, u store.User) (store.Outcome, error)
	Get(ctx context.Context, id string) (store.User, error)
	ClerkInstance(ctx context.Context) (string, error)
}

// syncedUser is the stored user as POST /api/sync/users/:id answers it.
type syncedUser struct {
	ID             string  `json:"id"`
	Email          *string `json:"email"`
	FullName       string  `json:"full_name"`
	Username       string  `json:"username,omitempty"`
	ProfilePicture string  `json:"profile_picture,omitempty"`
	CreatedAt      int64   `json:"created_at"`
	UpdatedAt      int64   `json:"updated_at"`
	Deleted        bool    `json:"deleted,omitempty"`
	// Outcome is what this call's write did: inserted, updated, or skipped (the database
	// already had this version or a newer one, or a deletion).
	Outcome store.Outcome `json:"outcome"`
}

// syncTimeout bounds one on-demand sync: Clerk's answer and the write.
const syncTimeout = 10 * time.Second

// handleSyncUser is POST /api/sync/users/:id: an application that finds a signed-in user
// missing from its database (the webhook has not landed yet) asks for that user now. With the
// bearer token, it reads the user from Clerk's Backend API and writes it through the same
// guarded upsert as the webhooks (never over a newer write, never reviving a deleted user),
// then answers the stored document. It answers 401 without the token, 404 when Clerk has no
// such user, 410 when the user was deleted, 503 (with Retry-After) when Clerk or the database
// cannot answer now, and 409 when CLERK_SECRET_KEY belongs to another Clerk instance than the
// database follows.
func handleSyncUser(token string, api userSyncer, users syncStore, logger *slog.Logger) echo.HandlerFunc {
	check := &instanceCheck{api: api, users: users}
	return func(c echo.Context) error {
		got, ok := strings.CutPrefix(c.Request().Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
			c.Response().Header().Set("WWW-Authenticate", `Bearer realm="clerk-user-sync"`)
			return c.JSON(http.StatusUnauthorized, map[string]string{"error": "missing or wrong bearer token; send Authorization: Bearer <SYNC_API_TOKEN>"})
		}
		id := c.Param("id")
		ctx, cancel := context.WithTimeout(c.Request().Context(), syncTimeout)
		defer cancel()
		log := logger.With("user_id", id, "route", "sync")

		if err := check.ok(ctx); err != nil {
			if errors.Is(err, errOtherInstance) {
				log.Error("on-demand sync refused", "error", err)
				return c.JSON(http.StatusConflict, map[string]string{"error": err.Error()})
			}
			log.Warn("on-demand sync: checking the Clerk instance failed", "error", err)
			return unavailable(c, "could not check the Clerk instance; retry")
		}
		cu, err := api.GetUser(ctx, id)
		var rl *clerk.RateLimitedError
		switch {
		case errors.Is(err, clerk.ErrUserNotFound):
			return c.JSON(http.StatusNotFound, map[string]string{"error": "Clerk has no user " + id})
		case errors.As(err, &rl):
			c.Response().Header().Set("Retry-After", strconv.Itoa(max(1, int(rl.RetryAfter.Seconds()))))
			return c.JSON(http.StatusServiceUnavailable, map[string]string{"error": "Clerk's rate limit; retry after the Retry-After delay"})
		case err != nil:
			log.Warn("on-demand sync: reading the user from Clerk failed", "error", err)
			return unavailable(c, "could not read the user from Clerk; retry")
		}
		su, err := cu.StoreUser(0)
		if err != nil {
			log.Warn("on-demand sync: Clerk's user cannot be stored", "error", err)
			return c.JSON(http.StatusUnprocessableEntity, map[string]string{"error": "Clerk's user cannot be stored: " + err.Error()})
		}
		out, err := users.UpsertUser(ctx, su)
		if err != nil {
			log.Error("on-demand sync: writing the user failed", "error", err)
			return unavailable(c, "could not write the user; retry")
		}
		stored, err := users.Get(ctx, id)
		if err != nil {
			log.Error("on-demand sync: reading the user back failed", "error", err)
			return unavailable(c, "could not read the user back; retry")
		}
		log.Info("user synced on demand", "outcome", out)
		body := syncedUser{
			ID: stored.ID, Email: stored.Email, FullName: stored.FullName, Username: stored.Username,
			ProfilePicture: stored.ProfilePicture, CreatedAt: stored.CreatedAt, UpdatedAt: stored.UpdatedAt,
			Deleted: stored.Deleted, Outcome: out,
		}
		if stored.Deleted {
			return c.JSON(http.StatusGone, body)
		}
		return c.JSON(http.StatusOK, body)
	}
}

// unavailable answers 503 with a Retry-After of one second and msg.
func unavailable(c echo.Context, msg string) error {
	c.Response().Header().Set("Retry-After", "1")
	return c.JSON(http.StatusServiceUnavailable, map[string]string{"error": msg})
}

// errOtherInstance means CLERK_SECRET_KEY belongs to another Clerk instance than the one the
// database follows (sync_metadata).
var errOtherInstance = errors.New("CLERK_SECRET_KEY belongs to another Clerk instance than the one this database follows; see forget-clerk-instance")

// instanceCheck compares the key's Clerk instance with the database's once, and remembers a
// pass: the on-demand sync writes only for the instance the reconciliation follows.
type instanceCheck struct {
	api   userSyncer
	users syncStore

	mu     sync.Mutex
	passed bool
}

// ok returns nil once the key's instance is the recorded one (or none is recorded), an error
// wrapping errOtherInstance when it is not, and Clerk's or the database's error otherwise
// (asked again on the next call).
func (c *instanceCheck) ok(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.passed {
		return nil
	}
	recorded, err := c.users.ClerkInstance(ctx)
	if err != nil {
		return err
	}
	if recorded != "" {
		key, err := c.api.InstanceID(ctx)
		if err != nil {
			return err
		}
		if key != recorded {
			return errors.Join(errOtherInstance, errors.New("key's instance "+key+", database's "+recorded))
		}
	}
	c.passed = recorded != "" // with none recorded yet, ask again next time
	return nil
}
