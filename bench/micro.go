package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	svix "github.com/svix/svix-webhooks/go"

	"clerksync/clerk"
	"clerksync/webhook"
)

// micro is one microbenchmark pair: the service's code and the baseline's.
type micro struct {
	name              string
	service, baseline func(b *testing.B)
}

// marshalSender does what the Inngest SDK does with an event before the network: marshal it.
type marshalSender struct{}

func (marshalSender) Send(_ context.Context, evt any) (string, error) {
	_, err := json.Marshal([]any{evt})
	return "01MICRO", err
}

// microBenchmarks are row 5, also run by `go test -bench . -benchmem ./bench`.
func microBenchmarks() []micro {
	wh, _ := svix.NewWebhook(benchSecret)
	req := preSign(wh, "micro", 1)[0]
	newReq := func() *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/api/webhooks/clerk", bytes.NewReader(req.body))
		r.Header.Set("svix-id", req.id)
		r.Header.Set("svix-timestamp", req.ts)
		r.Header.Set("svix-signature", req.sig)
		return r
	}
	var data struct {
		Data json.RawMessage `json:"data"`
	}
	_ = json.Unmarshal(req.body, &data)

	return []micro{
		{
			name: "verify + decode + forward (webhook handler)",
			service: func(b *testing.B) {
				v, _ := webhook.NewVerifier(benchSecret)
				e := echo.New()
				e.POST("/api/webhooks/clerk", webhook.Handler(v, marshalSender{}, slog.New(slog.DiscardHandler), webhook.Options{Timeout: 5 * time.Second}))
				b.ReportAllocs()
				for b.Loop() {
					rec := httptest.NewRecorder()
					e.ServeHTTP(rec, newReq())
					if rec.Code != http.StatusOK {
						b.Fatalf("status %d", rec.Code)
					}
				}
			},
			baseline: func(b *testing.B) {
				h := baselineHandler(wh, func(context.Context, []byte) error { return nil })
				b.ReportAllocs()
				for b.Loop() {
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, newReq())
					if rec.Code != http.StatusOK {
						b.Fatalf("status %d", rec.Code)
					}
				}
			},
		},
		{
			name: "payload -> user mapping",
			service: func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					var c clerk.User
					if err := json.Unmarshal(data.Data, &c); err != nil {
						b.Fatal(err)
					}
					if _, err := c.StoreUser(1); err != nil {
						b.Fatal(err)
					}
				}
			},
			baseline: func(b *testing.B) {
				// The least: the id, names, image and the first email address, no checks.
				b.ReportAllocs()
				for b.Loop() {
					var c struct {
						ID        string `json:"id"`
						FirstName string `json:"first_name"`
						LastName  string `json:"last_name"`
						ImageURL  string `json:"image_url"`
						UpdatedAt int64  `json:"updated_at"`
						Emails    []struct {
							Email string `json:"email_address"`
						} `json:"email_addresses"`
					}
					if err := json.Unmarshal(data.Data, &c); err != nil {
						b.Fatal(err)
					}
					_ = c.FirstName + " " + c.LastName
				}
			},
		},
	}
}
