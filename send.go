package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	svix "github.com/svix/svix-webhooks/go"

	"clerksync/examples"
)

// runSend is `clerk-user-sync send`: like the Clerk dashboard's "Send Example", it signs a
// Clerk event with the configured signing secret and posts it to a running service, printing
// the answer. args are the arguments after "send". It returns an error when the secret is
// missing, the payload cannot be read, the service cannot be reached, or it does not answer 2xx.
func runSend(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("send", flag.ContinueOnError)
	fs.SetOutput(stderr)
	s := &settings{getenv: getenv}
	base, baseErr := s.http().localURL()
	secrets := s.secrets()
	url := fs.String("url", base+"/api/webhooks/clerk", "the service's webhook URL (default: HOST and PORT on this machine)")
	id := fs.String("id", "", "the Svix message id (default: a new one; reuse one to imitate a Svix retry)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: clerk-user-sync send [-url URL] [-id MSG_ID] <%s | FILE.json>\n\n", strings.Join(examples.Names(), " | "))
		fmt.Fprintln(stderr, "Signs a Clerk event with CLERK_WEBHOOK_SIGNING_SECRET and posts it to the service.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil // the usage is printed: asked for, not a failure
		}
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errors.New("send needs one event type or file")
	}
	if err := s.err(); err != nil {
		return fmt.Errorf("%w (send signs with the same secret the service verifies with: the last one listed)", err)
	}
	if baseErr != nil && !urlSet(fs) {
		return fmt.Errorf("%w, or pass -url", baseErr)
	}
	wh, err := svix.NewWebhook(secrets[len(secrets)-1])
	if err != nil {
		return fmt.Errorf("CLERK_WEBHOOK_SIGNING_SECRET: %w", err)
	}

	what := fs.Arg(0)
	body, err := examples.Payload(what)
	if strings.HasSuffix(what, ".json") || err != nil {
		var ferr error
		if body, ferr = os.ReadFile(what); ferr != nil {
			if err == nil {
				err = ferr
			}
			return fmt.Errorf("%v (or a file: %v)", err, ferr)
		}
	}

	msgID := *id
	if msgID == "" {
		b := make([]byte, 12)
		_, _ = rand.Read(b)
		msgID = "msg_" + hex.EncodeToString(b)
	}
	now := time.Now()
	sig, err := wh.Sign(msgID, now, body)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, *url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("-url %q: %w", *url, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("svix-id", msgID)
	req.Header.Set("svix-timestamp", strconv.FormatInt(now.Unix(), 10))
	req.Header.Set("svix-signature", sig)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("post %s: %w; is the service running (make dev)?", *url, err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	fmt.Fprintf(stdout, "POST %s (svix-id %s) = %s\n%s\n", *url, msgID, resp.Status, bytes.TrimSpace(answer))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("the service answered %s", resp.Status)
	}
	return nil
}

// urlSet reports whether the -url flag was given.
func urlSet(fs *flag.FlagSet) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == "url" })
	return set
}
