package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/criu-forge/criu-forge/internal/testutil/fakegithub"
	"github.com/criu-forge/criu-forge/internal/testutil/upstream"
	"github.com/criu-forge/criu-forge/internal/watch"
)

// TestWatchCommand drives `watch` through its cases against the fixture
// upstream and the fake API: nothing new (exit 0, only 304s the second
// time), a new release containing a merged PR (exit 3, JSON, webhook and
// --exec once per plan), --write carrying the recipe forward so that lint
// and prepare accept it, a second instance refused, the daemon stopping on
// cancel, a rate limit (exit 1).
func TestWatchCommand(t *testing.T) {
	fx := upstream.New(t)
	gh := fakegithub.New(t)
	const owner, name = "checkpoint-restore", "criu"
	release := func(tag string) {
		gh.AddTag(owner, name, fakegithub.Tag{Name: tag, CommitSHA: fx.Commits[tag]})
		gh.AddRelease(owner, name, fakegithub.Release{Tag: tag, PublishedAt: time.Date(2026, 7, 20, 12, 0, 0, 0, time.UTC)})
	}
	release("v4.1.1")
	pr := fx.PRs[101]
	var commits []fakegithub.Commit
	for _, c := range pr.Commits {
		commits = append(commits, fakegithub.Commit{SHA: c})
	}
	gh.AddPR(owner, name, fakegithub.PR{Number: 101, Title: pr.Title, State: "open", HeadSHA: pr.Head, Commits: commits})

	dir := t.TempDir()
	recipePath := filepath.Join(dir, "recipes", "fx.yaml")
	for _, d := range []string{filepath.Dir(recipePath), filepath.Join(dir, "patches", "fx")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	body := "name: fx\nupstream:\n  version: 4.1.1\n  github: checkpoint-restore/criu\n  sources:\n    - git: {url: \"" + fx.Dir + "\", ref: v4.1.1}\nseries:\n  - pr: 101\nbuild: {deps: {deb: [gcc]}}\ntargets:\n  - {distro: debian, release: \"12\"}\n"
	if err := os.WriteFile(recipePath, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	cache := filepath.Join(dir, "cache")
	t.Setenv("GITHUB_TOKEN", "ghp_secret_never_printed")
	t.Setenv("CRIU_FORGE_WATCH_WEBHOOK", "")
	forge := func(args ...string) (int, string, string) {
		t.Helper()
		code, out, stderr := cli(t, append([]string{"--cache-dir", cache, "--github-api", gh.URL()}, args...)...)
		if strings.Contains(out+stderr, "ghp_secret") {
			t.Fatalf("%v printed the token", args)
		}
		return code, out, stderr
	}
	if code, out, stderr := forge("sync", recipePath); code != 0 {
		t.Fatalf("sync: %d\n%s%s", code, out, stderr)
	}

	// Nothing new, twice: the second run sends only conditional requests.
	if code, out, stderr := forge("watch", recipePath); code != watch.ExitNothingToDo || !strings.Contains(out, "nothing new") {
		t.Fatalf("watch: exit %d\n%s%s", code, out, stderr)
	}
	gh.ResetLog()
	start := time.Now()
	code, out, _ := forge("watch", recipePath)
	took := time.Since(start)
	st := gh.Stats()
	if code != 0 || st.Requests == 0 || st.NotModified != st.Requests || !strings.Contains(out, "3 requests, 3 not modified") {
		t.Errorf("second run: exit %d, %+v\n%s", code, st, out)
	}
	t.Logf("second run with nothing new: %v", took)

	// v4.2.1 is released and PR 101 merged: drop it, rebase.
	release("v4.2.1")
	gh.MergePR(owner, name, 101, strings.Repeat("e", 40), time.Date(2026, 7, 1, 9, 0, 0, 0, time.UTC))
	code, out, stderr := forge("watch", "--json", recipePath)
	if code != watch.ExitActionNeeded {
		t.Fatalf("watch --json: exit %d\n%s", code, stderr)
	}
	var plan watch.Plan
	if err := json.Unmarshal([]byte(out), &plan); err != nil {
		t.Fatalf("--json output is not the plan: %v\n%s", err, out)
	}
	var kinds []string
	for _, a := range plan.Recipes[0].Actions {
		kinds = append(kinds, a.Kind+" "+a.Entry)
	}
	if got := strings.Join(kinds, ","); got != "rebase ,drop PR #101,rebuild " {
		t.Errorf("actions: %q", got)
	}

	// Notifications: the webhook and the command get the plan once.
	var mu sync.Mutex
	var posts [][]byte
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		data, _ := io.ReadAll(r.Body)
		mu.Lock()
		posts = append(posts, data)
		mu.Unlock()
	}))
	defer hook.Close()
	planFile := filepath.Join(dir, "plan-from-exec.json")
	for i := 0; i < 2; i++ {
		code, _, stderr = forge("watch", "--webhook", hook.URL+"/hook", "--exec", "cat > "+planFile, recipePath)
		if code != watch.ExitActionNeeded {
			t.Fatalf("watch --webhook: exit %d\n%s", code, stderr)
		}
	}
	mu.Lock()
	if len(posts) != 1 || !bytes.Contains(posts[0], []byte(`"kind": "drop"`)) {
		t.Errorf("webhook got %d posts: %s", len(posts), posts)
	}
	mu.Unlock()
	if data, err := os.ReadFile(planFile); err != nil || !bytes.Contains(data, []byte(`"entry": "PR #101"`)) {
		t.Errorf("--exec got %q (%v)", data, err)
	}
	if !strings.Contains(stderr, "not sent again") {
		t.Errorf("second notification not suppressed:\n%s", stderr)
	}

	// A second watch on the same state directory is refused.
	inst, err := watch.Claim(filepath.Join(cache, "watch"))
	if err != nil {
		t.Fatal(err)
	}
	code, _, stderr = forge("watch", recipePath)
	inst.Release()
	if code != 1 || !strings.Contains(stderr, filepath.Join(cache, "watch", "watch.lock")) {
		t.Errorf("second instance: exit %d\n%s", code, stderr)
	}

	// --write, then lint and prepare accept the recipe; watch is content.
	code, out, stderr = forge("watch", "--write", recipePath)
	if code != watch.ExitActionNeeded || !strings.Contains(out, "wrote "+recipePath+": upstream 4.1.1 -> 4.2.1") || !strings.Contains(out, "dropped PR #101") {
		t.Fatalf("watch --write: exit %d\n%s%s", code, out, stderr)
	}
	if code, out, stderr := forge("lint", recipePath); code != 0 {
		t.Errorf("lint after write: %d\n%s%s", code, out, stderr)
	}
	if code, out, stderr := forge("--offline", "prepare", recipePath, "--out", filepath.Join(dir, "tree")); code != 0 {
		t.Errorf("prepare after write: %d\n%s%s", code, out, stderr)
	}
	if code, out, stderr := forge("watch", recipePath); code != 0 {
		t.Errorf("watch after write: exit %d\n%s%s", code, out, stderr)
	}

	// A recipe edited since its lock: --apply re-syncs, then the build
	// fails (no such runner) and the summary says so, exit 1.
	data, err := os.ReadFile(recipePath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(recipePath, []byte(strings.Replace(string(data), "[gcc]", "[gcc, make]", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, stderr = forge("watch", "--apply", "--runner", "no-such-runner", "--out", filepath.Join(dir, "out"), recipePath)
	if code != watch.ExitError || !strings.Contains(out, "action sync:") || !strings.Contains(out, "apply "+recipePath+": FAILED: build:") {
		t.Errorf("watch --apply: exit %d\n%s%s", code, out, stderr)
	}
	if code, out, stderr := forge("--offline", "prepare", recipePath, "--out", filepath.Join(dir, "tree2")); code != 0 {
		t.Errorf("prepare after --apply re-synced: %d\n%s%s", code, out, stderr)
	}

	// The daemon checks until cancelled (SIGTERM), then exits 0.
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	var dout, derr bytes.Buffer
	code = run(ctx, []string{"--cache-dir", cache, "--github-api", gh.URL(), "watch", "--interval", "200ms", recipePath}, &dout, &derr)
	if code != 0 || strings.Count(dout.String(), "nothing to do") < 2 || !strings.Contains(derr.String(), "stopping") {
		t.Errorf("daemon: exit %d\n%s%s", code, dout.String(), derr.String())
	}

	// A rate limit: exit 1 with the reset time.
	gh.RateLimitNext(10, time.Now().Add(42*time.Minute))
	code, out, _ = forge("watch", recipePath)
	if code != watch.ExitError || !strings.Contains(out, "rate limit") || !strings.Contains(out, "UTC") {
		t.Errorf("rate limited: exit %d\n%s", code, out)
	}
}

func TestWatchUsage(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"watch"}, "one or more recipe files"},
		{[]string{"watch", "--range", "4.2", "x.yaml"}, "lacks an operator"},
		{[]string{"watch", "--tag-pattern", "(", "x.yaml"}, "--tag-pattern"},
		{[]string{"watch", "--repo", "/tmp/r", "x.yaml"}, "needs a signing key"},
		{[]string{"--offline", "watch", "x.yaml"}, "cannot run --offline"},
	}
	for _, tt := range tests {
		code, _, stderr := cli(t, tt.args...)
		if code != 2 || !strings.Contains(stderr, tt.want) {
			t.Errorf("%v: exit %d\n%s", tt.args, code, stderr)
		}
	}
	t.Setenv("CRIU_FORGE_WATCH_WEBHOOK", "https://chat.example/hooks/s3cret")
	_, out, _ := cli(t, "watch", "--help")
	if strings.Contains(out, "s3cret") {
		t.Error("watch --help shows the webhook URL from the environment")
	}
	for _, want := range []string{"0 nothing to do", "3 action needed", "1 error", "--interval", "planVersion"} {
		if !strings.Contains(out, want) {
			t.Errorf("watch --help lacks %q", want)
		}
	}
}
