package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	svix "github.com/svix/svix-webhooks/go"
)

// signUpPayload returns a realistic (~2 KB) Clerk user.created envelope for user i of a run.
func signUpPayload(run string, i int, updatedAt int64) []byte {
	id := fmt.Sprintf("user_%s%06d", run, i)
	email := fmt.Sprintf("bench.user%d@%s.example.org", i, run)
	data := map[string]any{
		"id": id, "object": "user", "username": nil, "first_name": "Bench", "last_name": fmt.Sprintf("User %d", i),
		"image_url": "https://img.clerk.com/eyJ0eXBlIjoiZGVmYXVsdCIsImlpZCI6Imluc18yOXc4M3NLbVEifQ", "has_image": false,
		"profile_image_url": "https://www.gravatar.com/avatar?d=mp", "birthday": "", "gender": "",
		"primary_email_address_id": "idn_" + id, "primary_phone_number_id": nil, "primary_web3_wallet_id": nil,
		"email_addresses": []any{map[string]any{
			"id": "idn_" + id, "object": "email_address", "email_address": email, "linked_to": []any{}, "reserved": false,
			"verification": map[string]any{"status": "verified", "strategy": "email_code", "attempts": 1, "expire_at": updatedAt + 600000},
		}},
		"phone_numbers": []any{}, "web3_wallets": []any{}, "external_accounts": []any{}, "passkeys": []any{},
		"password_enabled": true, "two_factor_enabled": false, "totp_enabled": false, "backup_code_enabled": false,
		"public_metadata": map[string]any{"plan": "free", "onboarded": false}, "private_metadata": map[string]any{"crm_id": fmt.Sprintf("crm-%08d", i)},
		"unsafe_metadata": map[string]any{}, "external_id": nil, "last_sign_in_at": nil, "banned": false, "locked": false,
		"lockout_expires_in_seconds": nil, "verification_attempts_remaining": 100, "delete_self_enabled": true,
		"create_organization_enabled": true, "last_active_at": updatedAt, "legal_accepted_at": nil,
		"created_at": updatedAt, "updated_at": updatedAt,
	}
	b, _ := json.Marshal(map[string]any{
		"data": data, "object": "event", "type": "user.created", "timestamp": updatedAt, "instance_id": "ins_29w83sKmQbenchmark",
		"event_attributes": map[string]any{"http_request": map[string]any{
			"client_ip": "203.0.113.7", "user_agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/128.0.0.0 Safari/537.36",
		}},
	})
	return b
}

// signedRequest is one pre-signed webhook delivery.
type signedRequest struct {
	id, ts, sig string
	body        []byte
}

// preSign signs n distinct sign-ups (unique svix ids) for run.
func preSign(wh *svix.Webhook, run string, n int) []signedRequest {
	now := time.Now()
	out := make([]signedRequest, n)
	for i := range out {
		body := signUpPayload(run, i, now.UnixMilli())
		id := fmt.Sprintf("msg_%s_%06d", run, i)
		sig, _ := wh.Sign(id, now, body)
		out[i] = signedRequest{id: id, ts: strconv.FormatInt(now.Unix(), 10), sig: sig, body: body}
	}
	return out
}

// loadResult summarises one load run.
type loadResult struct {
	n, failed int
	failedIdx []int // indexes into the posted requests
	elapsed   time.Duration
	p50, p99  time.Duration
}

func (r loadResult) rps() float64 { return float64(r.n-r.failed) / r.elapsed.Seconds() }

// postLoad posts every request to url with c concurrent keep-alive clients and measures each.
func postLoad(url string, reqs []signedRequest, c int) loadResult {
	client := &http.Client{
		Timeout:   20 * time.Second,
		Transport: &http.Transport{MaxIdleConns: c, MaxIdleConnsPerHost: c},
	}
	lat := make([]time.Duration, len(reqs))
	var failed int
	var failedIdx []int
	var mu sync.Mutex
	next := make(chan int)
	var wg sync.WaitGroup
	start := time.Now()
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				r := reqs[i]
				req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(r.body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("svix-id", r.id)
				req.Header.Set("svix-timestamp", r.ts)
				req.Header.Set("svix-signature", r.sig)
				t0 := time.Now()
				resp, err := client.Do(req)
				ok := err == nil && resp.StatusCode == http.StatusOK
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				lat[i] = time.Since(t0)
				if !ok {
					mu.Lock()
					failed++
					failedIdx = append(failedIdx, i)
					mu.Unlock()
				}
			}
		}()
	}
	for i := range reqs {
		next <- i
	}
	close(next)
	wg.Wait()
	elapsed := time.Since(start)
	res := summarize(lat)
	res.n, res.failed, res.failedIdx, res.elapsed = len(reqs), failed, failedIdx, elapsed
	return res
}

// deliver posts every request like postLoad, then re-posts the refused ones (re-signed with the
// same svix id, as Svix retries) until all are accepted; it gives up after 5 rounds.
func deliver(wh *svix.Webhook, url string, reqs []signedRequest, c int) {
	for round := 1; ; round++ {
		res := postLoad(url, reqs, c)
		if res.failed == 0 {
			return
		}
		logf("%d of %d webhooks refused in round %d; re-posting them", res.failed, len(reqs), round)
		if round == 5 {
			exitOn(fmt.Errorf("%d webhooks still refused after %d rounds", res.failed, round))
		}
		now := time.Now()
		retry := make([]signedRequest, 0, len(res.failedIdx))
		for _, i := range res.failedIdx {
			r := reqs[i]
			r.ts = strconv.FormatInt(now.Unix(), 10)
			r.sig, _ = wh.Sign(r.id, now, r.body)
			retry = append(retry, r)
		}
		reqs = retry
	}
}

// percentile of sorted durations.
func percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := (len(sorted)*p + 99) / 100
	if i > 0 {
		i--
	}
	return sorted[i]
}

// table prints rows of the final table.
type table struct {
	rows [][]string
}

func (t *table) add(cols ...string) { t.rows = append(t.rows, cols) }

func (t *table) print(w io.Writer) {
	widths := make([]int, len(t.rows[0]))
	for _, r := range t.rows {
		for i, c := range r {
			widths[i] = max(widths[i], len(c))
		}
	}
	for ri, r := range t.rows {
		cols := make([]string, len(r))
		for i, c := range r {
			cols[i] = c + strings.Repeat(" ", widths[i]-len(c))
		}
		fmt.Fprintln(w, "| "+strings.Join(cols, " | ")+" |")
		if ri == 0 {
			seps := make([]string, len(r))
			for i := range r {
				seps[i] = strings.Repeat("-", widths[i])
			}
			fmt.Fprintln(w, "|-"+strings.Join(seps, "-|-")+"-|")
		}
	}
}
