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

// signUpPayload returns a realistic (~1.6 KB) Clerk user.created envelope for user i of a run:
// the end-to-end rows' sign-ups.
func signUpPayload(run string, i int, updatedAt int64) []byte {
	return marshalEnvelope(signUpEnvelope(run, i, updatedAt))
}

// signUpEnvelope is signUpPayload's envelope, before marshalling.
func signUpEnvelope(run string, i int, updatedAt int64) map[string]any {
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
	return map[string]any{
		"data": data, "object": "event", "type": "user.created", "timestamp": updatedAt, "instance_id": "ins_29w83sKmQbenchmark",
		"event_attributes": map[string]any{"http_request": map[string]any{
			"client_ip": "203.0.113.7", "user_agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/128.0.0.0 Safari/537.36",
		}},
	}
}

func marshalEnvelope(env map[string]any) []byte {
	b, err := json.Marshal(env)
	exitOn(err)
	return b
}

// sizedSignUpPayload returns signUpPayload's sign-up made size bytes long (row 1's payload
// sizes), as Clerk's payloads differ: a smaller one leaves out what a minimal sign-up lacks
// (the request's attributes, the gravatar, the metadata), a larger one carries a Google
// account, as an OAuth sign-up does, and metadata. The last bytes go in private_metadata's
// "notes", so the size is exact from the smallest such payload (about 980 bytes) up.
func sizedSignUpPayload(run string, i int, updatedAt int64, size int) []byte {
	env := signUpEnvelope(run, i, updatedAt)
	data := env["data"].(map[string]any)
	base := len(signUpPayload(run, i, updatedAt))
	if size < base {
		// Clerk's payloads of a few years ago, without the fields added since.
		delete(env, "event_attributes")
		delete(env, "instance_id")
		for _, k := range []string{"profile_image_url", "birthday", "gender", "passkeys", "web3_wallets", "primary_web3_wallet_id",
			"legal_accepted_at", "lockout_expires_in_seconds", "delete_self_enabled", "create_organization_enabled",
			"verification_attempts_remaining", "last_active_at"} {
			delete(data, k)
		}
		data["public_metadata"] = map[string]any{}
	} else if size >= base+900 {
		id := data["id"].(string)
		data["external_accounts"] = []any{map[string]any{
			"id": "idn_g" + id, "object": "google_account", "provider": "oauth_google", "identification_id": "idn_g" + id,
			"provider_user_id": fmt.Sprintf("1%020d", i), "approved_scopes": "email https://www.googleapis.com/auth/userinfo.email https://www.googleapis.com/auth/userinfo.profile openid profile",
			"email_address": data["email_addresses"].([]any)[0].(map[string]any)["email_address"], "first_name": "Bench", "last_name": data["last_name"],
			"avatar_url": "https://lh3.googleusercontent.com/a/ACg8ocKbenchmarkAvatar=s96-c", "image_url": "https://img.clerk.com/eyJ0eXBlIjoicHJveHkiLCJzcmMiOiJodHRwczovL2xoMy5nb29nbGUifQ",
			"username": nil, "public_metadata": map[string]any{}, "label": nil, "created_at": updatedAt, "updated_at": updatedAt,
			"verification": map[string]any{"status": "verified", "strategy": "oauth_google", "attempts": nil, "expire_at": updatedAt + 600000},
		}}
	}
	meta := data["private_metadata"].(map[string]any)
	meta["notes"] = ""
	short := size - len(marshalEnvelope(env))
	if short > 0 {
		meta["notes"] = strings.Repeat("n", short)
	}
	return marshalEnvelope(env)
}

// signedRequest is one pre-signed webhook delivery.
type signedRequest struct {
	id, ts, sig string
	body        []byte
}

// preSign signs n distinct sign-ups (unique svix ids) for run.
func preSign(wh *svix.Webhook, run string, n int) []signedRequest {
	return preSignSized(wh, run, n, 0)
}

// preSignSized signs n distinct sign-ups of size bytes each (sizedSignUpPayload; 0:
// signUpPayload's).
func preSignSized(wh *svix.Webhook, run string, n, size int) []signedRequest {
	now := time.Now()
	out := make([]signedRequest, n)
	for i := range out {
		body := signUpPayload(run, i, now.UnixMilli())
		if size > 0 {
			body = sizedSignUpPayload(run, i, now.UnixMilli(), size)
		}
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
