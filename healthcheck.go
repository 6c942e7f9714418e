package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

// runHealthcheck is `clerk-user-sync healthcheck`: it asks the service on this machine (at
// HOST and PORT) whether it is ready, for container images that have no shell or curl. It
// returns an error when those settings are malformed or PORT is 0, or when the service does
// not answer 200 on /readyz within 3 seconds.
func runHealthcheck(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	s := &settings{getenv: getenv}
	base, err := s.http().localURL()
	if err == nil {
		err = s.err()
	}
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	url := base + "/readyz"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: GET %s = %s", url, resp.Status)
	}
	fmt.Fprintln(stdout, "ready")
	return nil
}
