package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	svix "github.com/svix/svix-webhooks/go"

	"clerksync/clerk/event"
)

// baselineHandler is the least any bridge must do, written plainly with net/http: read the
// body, verify the Svix signature, decode the envelope, and POST one event to Inngest's event
// API (through post). Row 1 and the allocation microbenchmark compare the service with it.
func baselineHandler(wh *svix.Webhook, post func(ctx context.Context, payload []byte) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, "read", http.StatusBadRequest)
			return
		}
		if err := wh.Verify(body, r.Header); err != nil {
			http.Error(w, "signature", http.StatusUnauthorized)
			return
		}
		var env struct {
			Type      string          `json:"type"`
			Timestamp json.Number     `json:"timestamp"`
			Data      json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(body, &env); err != nil || env.Type == "" {
			http.Error(w, "not a Clerk event", http.StatusBadRequest)
			return
		}
		ts, _ := strconv.ParseInt(env.Timestamp.String(), 10, 64)
		if ts < 100_000_000_000 {
			ts *= 1000
		}
		payload, err := json.Marshal([]any{map[string]any{
			"id": event.ID(r.Header.Get("svix-id")), "name": event.Name(env.Type), "data": env.Data, "ts": ts,
		}})
		if err != nil {
			http.Error(w, "encode", http.StatusInternalServerError)
			return
		}
		if err := post(r.Context(), payload); err != nil {
			http.Error(w, "inngest", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"forwarded"}`))
	})
}

// eventAPIPoster returns a post function sending to an Inngest event API at base.
func eventAPIPoster(base string) func(ctx context.Context, payload []byte) error {
	// The same transport settings as the service's, so that row 1 compares the handlers.
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns, t.MaxIdleConnsPerHost = 256, 64
	client := &http.Client{Timeout: 3 * time.Second, Transport: t}
	return func(ctx context.Context, payload []byte) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/e/bench", bytes.NewReader(payload))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("event API answered %d", resp.StatusCode)
		}
		return nil
	}
}
