package main

import (
	"log/slog"

	"github.com/inngest/inngestgo"

	"clerksync/clerk"
	"clerksync/reconcile"
	"clerksync/store"
)

// registerReconciliation creates the reconcile-users-with-clerk cron function on client when
// CLERK_SECRET_KEY is set, and does nothing otherwise. It returns an error if the SDK rejects
// the function.
func registerReconciliation(client inngestgo.Client, cfg config, users *store.Store, logger *slog.Logger, m *metrics) error {
	if cfg.clerk.secretKey == "" {
		logger.Info("CLERK_SECRET_KEY is not set: no scheduled reconciliation with Clerk")
		return nil
	}
	r := reconcile.New(users, newClerkAPI(cfg.clerk, logger), logger.With("function", reconcile.FunctionID), reconcile.Config{
		MaxDeleteShare:  cfg.clerk.maxDeleteShare,
		AllowMassDelete: cfg.clerk.allowMassDelete,
		Metrics:         m,
	})
	if err := r.Register(client, cfg.clerk.schedule); err != nil {
		return err
	}
	logger.Info("reconciliation with Clerk scheduled", "function", reconcile.FunctionID, "schedule", cfg.clerk.schedule,
		"max_delete_share", cfg.clerk.maxDeleteShare, "allow_mass_delete", cfg.clerk.allowMassDelete)
	return nil
}

// newClerkAPI returns the Clerk Backend API client of the settings.
func newClerkAPI(c clerkConfig, logger *slog.Logger) *clerk.API {
	return clerk.NewAPI(clerk.APIConfig{SecretKey: c.secretKey, APIURL: c.apiURL}, logger)
}
