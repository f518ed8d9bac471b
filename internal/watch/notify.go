package watch

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"time"
)

// WebhookTimeout bounds one webhook post: a stalled receiver must not hold
// up the watch.
const WebhookTimeout = 15 * time.Second

// PostWebhook posts the plan's JSON to rawURL. Errors name only the host:
// chat webhook addresses carry their secret in the path.
func PostWebhook(ctx context.Context, client *http.Client, rawURL string, plan *Plan) error {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return errors.New("webhook: want an http(s) URL")
	}
	body, err := plan.JSON()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, WebhookTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rawURL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("webhook to %s: bad request", u.Host)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "criu-forge")
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its message repeats the whole URL
		}
		return fmt.Errorf("webhook to %s: %v", u.Host, err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("webhook to %s: answered %s", u.Host, resp.Status)
	}
	return nil
}

// RunCommand runs command with sh -c, the plan's JSON on its standard input
// and CRIU_FORGE_WATCH_EXIT set to the plan's exit code.
func RunCommand(ctx context.Context, command string, plan *Plan, stdout, stderr io.Writer) error {
	body, err := plan.JSON()
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "sh", "-c", command)
	cmd.Stdin = bytes.NewReader(body)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.Env = append(os.Environ(), "CRIU_FORGE_WATCH_EXIT="+strconv.Itoa(plan.ExitCode()))
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("--exec command: %w", err)
	}
	return nil
}

// planDigest covers what a notification is about: the findings and
// actions, not the time or the request counts.
func planDigest(p *Plan) string {
	data, _ := json.Marshal(p.Recipes)
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// AlreadyNotified reports whether the same plan was last sent (MarkNotified),
// so that a watch repeated every few hours does not repeat its alert.
func AlreadyNotified(stateDir string, p *Plan) bool {
	return stateDir != "" && loadState(stateDir).Notified == planDigest(p)
}

// MarkNotified records the plan as sent.
func MarkNotified(stateDir string, p *Plan) error {
	st := loadState(stateDir)
	st.Notified = planDigest(p)
	return st.save(stateDir)
}
