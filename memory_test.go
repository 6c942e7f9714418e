package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime"
	rtmetrics "runtime/metrics"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/inngest/inngestgo"
)

// peakHeapLimit is what hostile load may add to the heap of the process running the service.
const peakHeapLimit = 64 << 20

// heapSampler records the largest heap (live and not yet swept objects) seen while it runs.
type heapSampler struct {
	peak atomic.Uint64
	stop chan struct{}
	done chan struct{}
}

func heapObjectBytes() uint64 {
	s := []rtmetrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	rtmetrics.Read(s)
	return s[0].Value.Uint64()
}

func startHeapSampler() *heapSampler {
	h := &heapSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(h.done)
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			if b := heapObjectBytes(); b > h.peak.Load() {
				h.peak.Store(b)
			}
			select {
			case <-h.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return h
}

func (h *heapSampler) finish() uint64 {
	close(h.stop)
	<-h.done
	return h.peak.Load()
}

// endlessJSON is a body of n bytes that is never held in memory: `{"a":"xxxx…`.
type endlessJSON struct{ left int }

func (r *endlessJSON) Read(p []byte) (int, error) {
	if r.left <= 0 {
		return 0, io.EOF
	}
	n := min(len(p), r.left)
	for i := range p[:n] {
		p[i] = 'x'
	}
	if r.left >= 30<<20 && n >= 6 { // the first read
		copy(p, `{"a":"`)
	}
	r.left -= n
	return n, nil
}

func TestBoundedMemoryUnderHostileLoad(t *testing.T) {
	eventAPI, accepted := startEventAPI(t)
	_, dbURI := startEmbeddedDB(t)
	secret := newSecret(t)
	signingKey := "signkey-prod-" + strings.Repeat("0123456789abcdef", 4)
	svc := startRun(t, map[string]string{
		"PORT":                         "0",
		"CLERK_WEBHOOK_SIGNING_SECRET": secret,
		"INNGEST_EVENT_KEY":            "evtkey-memory",
		"INNGEST_SIGNING_KEY":          signingKey,
		"INNGEST_SERVE_URL":            "https://sync.example.com/api/inngest",
		"INNGEST_BASE_URL":             eventAPI, // a self-hosted Inngest: signatures required
		"MONGODB_URI":                  dbURI + "/memory",
		"INNGEST_MAX_EVENT_BYTES":      "1MiB",
		"LOG_LEVEL":                    "error",
	})
	u, _ := url.Parse(svc.url)
	clerk := &stack{t: t, wh: mustWebhook(t, secret), appURL: svc.url}

	runtime.GC()
	baseline := heapObjectBytes()
	sampler := startHeapSampler()

	// 300 webhooks that announce 1 MiB and stall after a few bytes.
	const stalled = 300
	for i := range stalled {
		conn, err := net.Dial("tcp", u.Host)
		if err != nil {
			t.Fatalf("stalled webhook %d: %v", i, err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "POST /api/webhooks/clerk HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"+
			"svix-id: msg_stalled_%d\r\nsvix-timestamp: %d\r\nsvix-signature: v1,AAAA\r\n\r\n{\"type\":", u.Host, 1<<20, i, time.Now().Unix())
	}

	// 40 unsigned 30 MB bodies to /api/inngest at once, half with their length announced,
	// half chunked.
	const hostile = 40
	var wg sync.WaitGroup
	statuses := make([]string, hostile)
	for i := range hostile {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodPost, svc.url+"/api/inngest?fnId=clerk-user-sync-delete-user-with-clerk&stepId=step", io.NopCloser(&endlessJSON{left: 30 << 20}))
			if i%2 == 0 {
				req.ContentLength = 30 << 20
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Inngest-Signature", fmt.Sprintf("t=%d&s=00", time.Now().Unix())) // fresh, forged: its body is read
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				statuses[i] = "cut" // the service closed the connection instead of reading 30 MB
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			statuses[i] = resp.Status
		}()
	}

	// Meanwhile, Clerk's webhooks still go through.
	const valid = 20
	for i := range valid {
		body := clerkUserEvent("user.created", fmt.Sprintf("user_mem_%d", i), "Valid", "", 1700000000000)
		if got, err := clerk.post(body, fmt.Sprintf("msg_memory_valid_%d", i)); err != nil || got != http.StatusOK {
			t.Errorf("valid POST /api/webhooks/clerk during the attack = %d, %v; want 200", got, err)
		}
	}
	wg.Wait()
	peak := sampler.finish()

	for i, s := range statuses {
		if strings.HasPrefix(s, "2") {
			t.Errorf("unsigned 30 MB POST /api/inngest %d = %s; want it refused", i, s)
		}
	}
	if got := accepted.Load(); got != valid {
		t.Errorf("events accepted by Inngest = %d; want %d", got, valid)
	}
	grew := int64(peak) - int64(baseline)
	t.Logf("heap: %.1f MiB before, peak %.1f MiB (+%.1f MiB) under %d stalled webhooks and %d unsigned 30 MB bodies; statuses %v",
		float64(baseline)/(1<<20), float64(peak)/(1<<20), float64(grew)/(1<<20), stalled, hostile, countStrings(statuses))
	if grew > peakHeapLimit {
		t.Errorf("peak heap grew by %.1f MiB under hostile load; want at most %d MiB", float64(grew)/(1<<20), peakHeapLimit>>20)
	}

	// Once the attack is over, Inngest's signed calls run as before.
	body := invokeBody("user_after_attack", "After")
	sig, err := inngestgo.Sign(context.Background(), time.Now(), []byte(signingKey), body)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, svc.url+"/api/inngest?"+url.Values{"fnId": {"clerk-user-sync-sync-user-from-clerk"}, "stepId": {"step"}}.Encode(), bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Inngest-Signature", sig)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	respBody, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		t.Errorf("signed POST /api/inngest after the attack = %d %s; want 2xx", resp.StatusCode, respBody)
	}
}

// countStrings returns how many times each string occurs in ss.
func countStrings(ss []string) map[string]int {
	m := map[string]int{}
	for _, s := range ss {
		m[s]++
	}
	return m
}
