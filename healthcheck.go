package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// runHealthcheck is `clerk-user-sync healthcheck`: it asks the service on this machine (at
// HOST and PORT) whether it is ready, for container images that have no shell or curl. It returns an
// error when the service does not answer 200 on /readyz within 3 seconds.
func runHealthcheck(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	port := getenv("PORT")
	if port == "" {
		port = "3000"
	}
	host := getenv("HOST")
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	url := "http://" + net.JoinHostPort(host, port) + "/readyz"
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
