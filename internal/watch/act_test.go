package watch

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/criu-forge/criu-forge/internal/pipeline"
	"github.com/criu-forge/criu-forge/internal/recipe"
)

// TestActSummarizesEachRecipe: one recipe stops at its conflict, another
// is carried forward and then fails to build (no such runner), a third has
// nothing to do; each is reported, none stops the others.
func TestActSummarizesEachRecipe(t *testing.T) {
	e := newEnv(t)
	e.named("fa", "v4.1.1", "pr: 103")
	e.named("fb", "v4.1.1", "pr: 101", "patch: 0001-notes.patch")
	e.release("v4.2.1")
	e.named("fc", "v4.2.1", "patch: 0001-notes.patch")
	recipes := []*recipe.Recipe{e.loadNamed("fa"), e.loadNamed("fb"), e.loadNamed("fc")}
	plan, err := Run(context.Background(), recipes, e.opts())
	if err != nil {
		t.Fatal(err)
	}
	conflicted, _ := os.ReadFile(e.pathOf("fa"))

	rep := Act(context.Background(), recipes, plan, ActOptions{
		Series: e.seriesOpts(),
		Build:  pipeline.Options{Runner: "no-such-runner", OutDir: filepath.Join(t.TempDir(), "out")},
	})
	if len(rep.Recipes) != 2 || rep.Failed() != 2 {
		t.Fatalf("report: %+v", rep)
	}
	if a := rep.Recipes[0]; a.Recipe != "fa" || !strings.Contains(a.Error, "write: ") || !strings.Contains(a.Error, "Makefile.versions") {
		t.Errorf("fa: %+v", a)
	}
	if after, _ := os.ReadFile(e.pathOf("fa")); !bytes.Equal(after, conflicted) {
		t.Error("the conflicting recipe was changed")
	}
	b := rep.Recipes[1]
	if b.Recipe != "fb" || b.Write == nil || b.Write.To != "4.2.1" || !strings.Contains(b.Error, "build: ") || !strings.Contains(b.Error, "no-such-runner") {
		t.Errorf("fb: %+v", b)
	}
	if r, _, err := recipe.Load(e.pathOf("fb")); err != nil || r.Upstream.Version != "4.2.1" {
		t.Errorf("fb after apply: %v", err)
	}
	var out bytes.Buffer
	rep.Render(&out)
	for _, want := range []string{"apply " + e.pathOf("fa") + ": FAILED: write:", "recipe moved 4.1.1 -> 4.2.1", "dropped PR #101", "FAILED: build:"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, out.String())
		}
	}
}

func TestWebhook(t *testing.T) {
	t.Setenv("GITHUB_TOKEN", "ghp_never_sent")
	var got []byte
	var auth string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ = io.ReadAll(r.Body)
		auth = r.Header.Get("Authorization")
		if r.Header.Get("Content-Type") != "application/json" {
			w.WriteHeader(http.StatusUnsupportedMediaType)
		}
	}))
	defer srv.Close()
	plan := &Plan{PlanVersion: PlanVersion, ActionNeeded: true, Recipes: []RecipePlan{{Recipe: "fx", Actions: []Action{{Kind: ActionRebuild, Reason: "test"}}}}}
	if err := PostWebhook(context.Background(), nil, srv.URL+"/hooks/s3cret", plan); err != nil {
		t.Fatal(err)
	}
	want, _ := plan.JSON()
	if !bytes.Equal(got, want) || auth != "" || bytes.Contains(got, []byte("ghp_")) {
		t.Errorf("received %q (authorization %q)", got, auth)
	}

	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusBadGateway) }))
	defer failing.Close()
	err := PostWebhook(context.Background(), nil, failing.URL+"/hooks/s3cret", plan)
	if err == nil || !strings.Contains(err.Error(), "502") || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("failing receiver: %v", err)
	}

	release := make(chan struct{})
	stalled := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer stalled.Close()
	defer close(release) // before Close, which waits for the handler
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = PostWebhook(ctx, nil, stalled.URL+"/hooks/s3cret", plan)
	if err == nil || time.Since(start) > 5*time.Second || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("stalled receiver: %v after %v", err, time.Since(start))
	}
}

func TestRunCommand(t *testing.T) {
	dir := t.TempDir()
	plan := &Plan{PlanVersion: PlanVersion, ActionNeeded: true, Recipes: []RecipePlan{{Recipe: "fx", Actions: []Action{{Kind: ActionRebuild}}}}}
	cmd := `cat > "` + dir + `/plan.json"; echo "$CRIU_FORGE_WATCH_EXIT" > "` + dir + `/exit"`
	if err := RunCommand(context.Background(), cmd, plan, nil, nil); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(filepath.Join(dir, "plan.json"))
	want, _ := plan.JSON()
	code, _ := os.ReadFile(filepath.Join(dir, "exit"))
	if !bytes.Equal(got, want) || strings.TrimSpace(string(code)) != "3" {
		t.Errorf("command got %q, exit %q", got, code)
	}
	if err := RunCommand(context.Background(), "exit 7", plan, nil, nil); err == nil || !strings.Contains(err.Error(), "exit status 7") {
		t.Errorf("failing command: %v", err)
	}
}

func TestNotifiedOnce(t *testing.T) {
	dir := t.TempDir()
	plan := &Plan{Recipes: []RecipePlan{{Recipe: "fx", Actions: []Action{{Kind: ActionRebuild}}}}}
	if AlreadyNotified(dir, plan) {
		t.Fatal("fresh state says notified")
	}
	if err := MarkNotified(dir, plan); err != nil {
		t.Fatal(err)
	}
	again := *plan
	again.CheckedAt = time.Now() // a later run with the same findings
	if !AlreadyNotified(dir, &again) {
		t.Error("same plan notified twice")
	}
	changed := &Plan{Recipes: []RecipePlan{{Recipe: "fx", Actions: []Action{{Kind: ActionResync}}}}}
	if AlreadyNotified(dir, changed) {
		t.Error("a changed plan counts as notified")
	}
}

func TestDaemon(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var calls atomic.Int32
	var log bytes.Buffer
	done := make(chan error)
	go func() {
		done <- Daemon(ctx, 20*time.Millisecond, func(context.Context) error {
			if calls.Add(1) == 3 {
				cancel() // as SIGTERM does
			}
			return errors.New("GitHub down")
		}, &log)
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("daemon did not stop")
	}
	if calls.Load() != 3 || strings.Count(log.String(), "GitHub down") != 2 || !strings.Contains(log.String(), "stopping") {
		t.Errorf("calls %d, log:\n%s", calls.Load(), log.String())
	}
	if err := Daemon(context.Background(), 0, nil, nil); err == nil {
		t.Error("zero interval accepted")
	}
	for _, u := range []float64{0, 0.5, 0.999} {
		d := jittered(6*time.Hour, u)
		if d < 324*time.Minute || d > 396*time.Minute {
			t.Errorf("jittered(6h, %v) = %v, want 6h ±10%%", u, d)
		}
	}
}
