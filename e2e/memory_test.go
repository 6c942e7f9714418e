package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/inngest/inngestgo"
)

// peakHeapLimit is what hostile load may add to the heap of the service's process.
const peakHeapLimit = 64 << 20

// heapSampler records the largest heap of the service (its live and not yet swept objects)
// while it runs, from two sources: go_memstats_heap_alloc_bytes (the Go runtime's
// /memory/classes/heap/objects:bytes) on the service's metrics listener, polled every 10 ms;
// and the heap at the start and end of each garbage collection that the service traces on
// stderr (GODEBUG=gctrace=1), which shows the peaks between two polls: the heap grows until a
// collection starts.
type heapSampler struct {
	svc        *service
	metricsURL string
	logFrom    int // the length of the service's stderr when sampling began
	peak       atomic.Uint64
	stop       chan struct{}
	done       chan struct{}
}

// heapAlloc returns go_memstats_heap_alloc_bytes from the metrics at metricsURL.
func heapAlloc(metricsURL string) (uint64, error) {
	resp, err := http.Get(metricsURL)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_memstats_heap_alloc_bytes "); ok {
			f, err := strconv.ParseFloat(v, 64)
			return uint64(f), err
		}
	}
	return 0, fmt.Errorf("GET %s: no go_memstats_heap_alloc_bytes (%v)", metricsURL, sc.Err())
}

func startHeapSampler(svc *service, metricsURL string) *heapSampler {
	h := &heapSampler{svc: svc, metricsURL: metricsURL, logFrom: len(svc.stderr.String()), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(h.done)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			if b, err := heapAlloc(metricsURL); err == nil && b > h.peak.Load() {
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

// gcTraceRE matches a gctrace line's heap sizes at the start and end of the collection and
// after it (MiB): "gc 12 @1.2s 3%: ... 12->14->6 MB, 13 MB goal, ...".
var gcTraceRE = regexp.MustCompile(`(?m)^gc \d+ @.* (\d+)->(\d+)->\d+ MB`)

// finish stops the sampler and returns the largest heap seen: polled, or traced by a
// collection, and how many collections ran meanwhile.
func (h *heapSampler) finish() (peak uint64, collections int) {
	close(h.stop)
	<-h.done
	peak = h.peak.Load()
	for _, m := range gcTraceRE.FindAllStringSubmatch(h.svc.stderr.String()[h.logFrom:], -1) {
		collections++
		for _, mib := range m[1:] {
			n, _ := strconv.ParseUint(mib, 10, 64)
			peak = max(peak, n<<20)
		}
	}
	return peak, collections
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
	parallel(t)
	eventAPI, accepted := startEventAPI(t)
	db := newDatabase(t, "memory")
	secret := newSecret(t)
	signingKey := "signkey-prod-" + strings.Repeat("0123456789abcdef", 4)
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	svc := startService(t, map[string]string{
		"PORT":                         "0",
		"CLERK_WEBHOOK_SIGNING_SECRET": secret,
		"INNGEST_EVENT_KEY":            "evtkey-memory",
		"INNGEST_SIGNING_KEY":          signingKey,
		"INNGEST_SERVE_URL":            "https://sync.example.com/api/inngest",
		"INNGEST_BASE_URL":             eventAPI, // a self-hosted Inngest: signatures required
		"MONGODB_URI":                  db.uri,
		"INNGEST_MAX_EVENT_BYTES":      "1MiB",
		"LOG_LEVEL":                    "error",
		"METRICS_ADDR":                 metricsAddr,
		"GODEBUG":                      "gctrace=1", // each garbage collection's heap sizes on stderr
	})
	u, _ := url.Parse(svc.url)
	clerk := newPoster(t, secret, svc.url)

	// The heap as the attack begins: live objects and garbage not yet collected.
	metricsURL := "http://" + metricsAddr + "/metrics"
	baseline, err := heapAlloc(metricsURL)
	if err != nil {
		t.Fatal(err)
	}
	sampler := startHeapSampler(svc, metricsURL)

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
	peak, collections := sampler.finish()

	for i, s := range statuses {
		if strings.HasPrefix(s, "2") {
			t.Errorf("unsigned 30 MB POST /api/inngest %d = %s; want it refused", i, s)
		}
	}
	if got := accepted.Load(); got != valid {
		t.Errorf("events accepted by Inngest = %d; want %d", got, valid)
	}
	grew := int64(peak) - int64(baseline)
	t.Logf("the service's heap: %.1f MiB before, peak %.1f MiB (+%.1f MiB, %d collections) under %d stalled webhooks and %d unsigned 30 MB bodies; statuses %v",
		float64(baseline)/(1<<20), float64(peak)/(1<<20), float64(grew)/(1<<20), collections, stalled, hostile, countStrings(statuses))
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
