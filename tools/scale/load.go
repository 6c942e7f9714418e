package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	svix "github.com/svix/svix-webhooks/go"
)

// loadConfig shapes the generated Clerk history.
type loadConfig struct {
	users      int
	updates    float64 // user.updated events per user, on average
	deletes    float64 // share of users deleted at the end of their history
	duplicates float64 // extra deliveries of already-sent messages, as a share of the distinct ones
	seed       int64
}

// modelUser is what the database must hold for one user once every event is in.
type modelUser struct {
	id        string
	base      string // the username derived from the email (or the id): the local part
	createdAt int64
	// The newest version: its updated_at, full name, email (nil: none), picture and Clerk
	// username ("" for none).
	updatedAt int64
	fullName  string
	email     *string
	picture   string
	handle    string
	deleted   bool
	deletedAt int64
}

// delivery is one webhook message (one svix id); a duplicate delivery is the same message
// posted again.
type delivery struct {
	msgID string
	body  []byte
	kind  string // user.created, user.updated, user.deleted
}

// history is the generated load: the model, the distinct messages, and the shuffled
// deliveries (the messages plus duplicates).
type history struct {
	users      []*modelUser
	messages   []delivery
	deliveries []delivery
	counts     map[string]int // distinct messages per event type
}

// generate builds a valid Clerk history for cfg.users users: every user signs up, then random
// users update their profile (name, email domain, and sometimes their Clerk username: a free
// one from a shared pool, or none) or get deleted, in one global timeline, so that Clerk's own
// invariant holds (no username held by two users at any instant) and updated_at grows per user.
// Some users share an email local part, so their derived usernames collide; some pool handles
// equal those local parts, so Clerk usernames displace derived ones; a few users have no email.
func generate(cfg loadConfig, run string) *history {
	rng := rand.New(rand.NewSource(cfg.seed))
	n := cfg.users
	groups := max(3, n/100)
	pool := make([]string, max(8, n/5))
	for i := range pool {
		if i%10 == 0 {
			pool[i] = fmt.Sprintf("shared%03d", (i/10)%groups) // a handle some users derive from their email
		} else {
			pool[i] = fmt.Sprintf("handle%05d", i)
		}
	}
	holder := map[string]int{}
	h := &history{counts: map[string]int{}}
	at := int64(1_700_000_000_000)
	version := make([]int, n)

	freeHandle := func() string {
		for range 20 {
			c := pool[rng.Intn(len(pool))]
			if _, taken := holder[c]; !taken {
				return c
			}
		}
		return ""
	}
	emit := func(kind string, i int, body []byte) {
		h.messages = append(h.messages, delivery{msgID: fmt.Sprintf("msg_%s_%07d", run, len(h.messages)), body: body, kind: kind})
		h.counts[kind]++
	}
	write := func(kind string, i int, handle string) {
		u := h.users[i]
		if u.handle != "" {
			delete(holder, u.handle)
		}
		if handle != "" {
			holder[handle] = i
		}
		at += 1 + int64(rng.Intn(5))
		v := version[i]
		version[i]++
		first := fmt.Sprintf("First%dv%d", i, v)
		u.updatedAt, u.fullName, u.handle = at, first+" Scale", handle
		u.picture = fmt.Sprintf("https://img.clerk.com/%s/v%d", u.id, v)
		var email *string
		if u.base != "" {
			e := fmt.Sprintf("%s@v%d.host%d.example.org", u.base, v, i)
			email = &e
		}
		u.email = email
		if kind == "user.created" {
			u.createdAt = at
		}
		emit(kind, i, clerkUserEvent(kind, u, first, at, v))
	}

	for i := range n {
		u := &modelUser{id: fmt.Sprintf("user_%s%06d", run, i)}
		switch {
		case i%50 == 7:
			u.base = "" // no email: the username derives from the id
		case i%10 == 0:
			u.base = fmt.Sprintf("shared%03d", (i/10)%groups)
		default:
			u.base = fmt.Sprintf("member%06d", i)
		}
		h.users = append(h.users, u)
		handle := ""
		if rng.Float64() < 0.3 {
			handle = freeHandle()
		}
		write("user.created", i, handle)
	}
	updates := int(cfg.updates * float64(n))
	deletes := int(cfg.deletes * float64(n))
	live := make([]int, n)
	for i := range live {
		live[i] = i
	}
	for updates+deletes > 0 && len(live) > 0 {
		k := rng.Intn(len(live))
		i := live[k]
		u := h.users[i]
		if rng.Intn(updates+deletes) < deletes {
			deletes--
			if u.handle != "" {
				delete(holder, u.handle)
			}
			at += 1 + int64(rng.Intn(5))
			u.deleted, u.deletedAt = true, at
			live[k] = live[len(live)-1]
			live = live[:len(live)-1]
			b, _ := json.Marshal(map[string]any{"object": "event", "type": "user.deleted", "timestamp": at, "instance_id": "ins_scaletest",
				"data": map[string]any{"object": "user", "id": u.id, "deleted": true}})
			emit("user.deleted", i, b)
			continue
		}
		updates--
		handle := u.handle
		switch r := rng.Float64(); {
		case r < 0.25:
			if u.handle != "" {
				delete(holder, u.handle) // free to take again, or to give up for another
			}
			handle = freeHandle()
		case r < 0.35:
			handle = ""
		}
		write("user.updated", i, handle)
	}

	h.deliveries = append(h.deliveries, h.messages...)
	for range int(cfg.duplicates * float64(len(h.messages))) {
		h.deliveries = append(h.deliveries, h.messages[rng.Intn(len(h.messages))])
	}
	rng.Shuffle(len(h.deliveries), func(i, j int) { h.deliveries[i], h.deliveries[j] = h.deliveries[j], h.deliveries[i] })
	return h
}

// clerkUserEvent returns a user.created or user.updated envelope shaped like Clerk's (about
// 1.3 KB).
func clerkUserEvent(kind string, u *modelUser, first string, at int64, v int) []byte {
	var username any
	if u.handle != "" {
		username = u.handle
	}
	data := map[string]any{
		"object": "user", "id": u.id, "first_name": first, "last_name": "Scale", "username": username,
		"image_url": u.picture, "has_image": true, "profile_image_url": u.picture,
		"created_at": u.createdAt, "updated_at": at, "last_active_at": at, "last_sign_in_at": nil,
		"primary_email_address_id": nil, "email_addresses": []any{}, "primary_phone_number_id": nil,
		"phone_numbers": []any{}, "web3_wallets": []any{}, "external_accounts": []any{}, "passkeys": []any{},
		"password_enabled": true, "two_factor_enabled": false, "totp_enabled": false, "backup_code_enabled": false,
		"public_metadata": map[string]any{"plan": "free"}, "private_metadata": map[string]any{"crm": fmt.Sprintf("crm-%s", u.id)},
		"unsafe_metadata": map[string]any{}, "external_id": nil, "banned": false, "locked": false,
		"delete_self_enabled": true, "create_organization_enabled": true,
	}
	if kind == "user.created" {
		data["created_at"] = at
	}
	if u.email != nil {
		eid := fmt.Sprintf("idn_%s_%d", u.id, v)
		data["primary_email_address_id"] = eid
		data["email_addresses"] = []any{map[string]any{
			"id": eid, "object": "email_address", "email_address": *u.email, "linked_to": []any{}, "reserved": false,
			"verification": map[string]any{"status": "verified", "strategy": "email_code", "attempts": 1, "expire_at": at + 600000},
		}}
	}
	b, _ := json.Marshal(map[string]any{
		"object": "event", "type": kind, "timestamp": at, "instance_id": "ins_scaletest", "data": data,
		"event_attributes": map[string]any{"http_request": map[string]any{"client_ip": "203.0.113.7", "user_agent": "Mozilla/5.0 (scale test)"}},
	})
	return b
}

// postStats is what posting the deliveries counted.
type postStats struct {
	attempts     atomic.Int64
	firstTry     atomic.Int64 // deliveries accepted at their first attempt
	accepted     atomic.Int64
	mu           sync.Mutex
	statuses     map[string]int // non-2xx answers (and transport errors), by status
	failed       []string       // msg ids never accepted
	lastAccepted time.Time
}

// poster posts deliveries like Svix: signed with the real library, each attempt signed anew
// with the same svix id; a delivery that does not get 2xx is retried with backoff.
type poster struct {
	wh      *svix.Webhook
	url     string
	client  *http.Client
	giveUp  time.Duration // per delivery
	stats   *postStats
	started time.Time
}

func newPoster(wh *svix.Webhook, url string, concurrency int) *poster {
	return &poster{
		wh:     wh,
		url:    url,
		client: &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{MaxIdleConns: concurrency, MaxIdleConnsPerHost: concurrency}},
		giveUp: 3 * time.Minute,
		stats:  &postStats{statuses: map[string]int{}},
	}
}

// postAll posts every delivery with concurrency workers, calling during(i) as delivery i is
// handed out, and returns when every delivery was accepted or given up.
func (p *poster) postAll(ctx context.Context, ds []delivery, concurrency int, during func(i int)) {
	p.started = time.Now()
	work := make(chan delivery)
	var wg sync.WaitGroup
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for d := range work {
				p.deliver(ctx, d)
			}
		}()
	}
	for i, d := range ds {
		if during != nil {
			during(i)
		}
		select {
		case work <- d:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	close(work)
	wg.Wait()
}

func (p *poster) deliver(ctx context.Context, d delivery) {
	start := time.Now()
	for attempt := 0; ; attempt++ {
		code, err := p.post(ctx, d)
		p.stats.attempts.Add(1)
		if err == nil && code >= 200 && code < 300 {
			p.stats.accepted.Add(1)
			if attempt == 0 {
				p.stats.firstTry.Add(1)
			}
			p.stats.mu.Lock()
			if now := time.Now(); now.After(p.stats.lastAccepted) {
				p.stats.lastAccepted = now
			}
			p.stats.mu.Unlock()
			return
		}
		key := strconv.Itoa(code)
		if err != nil {
			key = "connection error"
		}
		p.stats.mu.Lock()
		p.stats.statuses[key]++
		p.stats.mu.Unlock()
		if ctx.Err() != nil || time.Since(start) > p.giveUp {
			p.stats.mu.Lock()
			p.stats.failed = append(p.stats.failed, fmt.Sprintf("%s (last: %s %v)", d.msgID, key, err))
			p.stats.mu.Unlock()
			return
		}
		backoff := min(100*time.Millisecond<<min(attempt, 5), 3*time.Second)
		select {
		case <-ctx.Done():
		case <-time.After(backoff + time.Duration(rand.Int63n(int64(backoff/2)+1))):
		}
	}
}

// post signs d now and posts it once.
func (p *poster) post(ctx context.Context, d delivery) (int, error) {
	now := time.Now()
	sig, err := p.wh.Sign(d.msgID, now, d.body)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(d.body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("svix-id", d.msgID)
	req.Header.Set("svix-timestamp", strconv.FormatInt(now.Unix(), 10))
	req.Header.Set("svix-signature", sig)
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// statusSummary renders the non-2xx answers, e.g. "503 ×12, connection error ×3".
func (s *postStats) statusSummary() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.statuses) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(s.statuses))
	for k := range s.statuses {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := ""
	for i, k := range keys {
		if i > 0 {
			out += ", "
		}
		out += fmt.Sprintf("%s ×%d", k, s.statuses[k])
	}
	return out
}
