package watch

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/criu-forge/criu-forge/internal/recipe"
	"github.com/criu-forge/criu-forge/internal/testutil/fakegithub"
)

// TestNewReleaseContainsMergedPR: v4.2.1 appears after v4.1.1; PR 101 was
// merged and v4.2.1 holds its change, so the plan drops it, and the local
// patch still applies.
func TestNewReleaseContainsMergedPR(t *testing.T) {
	e := newEnv(t)
	e.recipe("v4.1.1", "pr: 101", "patch: 0001-notes.patch")

	p := e.watch()
	if p.ExitCode() != ExitNothingToDo || len(p.Recipes[0].Actions) != 0 {
		t.Fatalf("before the release: exit %d, actions %v", p.ExitCode(), actionKinds(p.Recipes[0]))
	}

	e.release("v4.2.1")
	e.gh.MergePR(owner, repoName, 101, strings.Repeat("a", 40), time.Date(2026, 7, 1, 9, 0, 0, 0, time.UTC))
	p = e.watch()
	rp := p.Recipes[0]
	if rp.Error != "" {
		t.Fatal(rp.Error)
	}
	if p.ExitCode() != ExitActionNeeded || !p.ActionNeeded {
		t.Errorf("exit %d, want %d", p.ExitCode(), ExitActionNeeded)
	}
	if len(rp.NewReleases) != 1 || rp.NewReleases[0].Tag != "v4.2.1" || rp.NewReleases[0].Commit != e.fx.Commits["v4.2.1"] {
		t.Errorf("new releases: %+v", rp.NewReleases)
	}
	pr := rp.PullRequests[0]
	if pr.State != "merged" || pr.MergedAt == nil || pr.ContainedIn != "v4.2.1" || pr.HeadMoved {
		t.Errorf("PR 101: %+v", pr)
	}
	if got := actionKinds(rp); got != "rebase, drop PR #101, rebuild" {
		t.Errorf("actions: %s", got)
	}
	var results []string
	for _, en := range rp.Rebase.Entries {
		results = append(results, en.Entry+"="+en.Result)
	}
	if got := strings.Join(results, " "); got != "PR #101=contained patch 0001-notes.patch=applies" || !rp.Rebase.Clean {
		t.Errorf("trial: %s (clean %v)", got, rp.Rebase.Clean)
	}

	var text bytes.Buffer
	p.Render(&text)
	for _, want := range []string{"new release: v4.2.1", "PR #101 [merged 2026-07-01], contained in v4.2.1", "PR #101: contained", "action drop: PR #101: v4.2.1 already contains", "action needed"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("rendered plan lacks %q:\n%s", want, text.String())
		}
	}
	data, err := p.JSON()
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"planVersion", "checkedAt", "actionNeeded", "recipes", "github"} {
		if _, ok := back[k]; !ok {
			t.Errorf("plan JSON lacks %q", k)
		}
	}
}

// TestMergedPRContainedInCurrentBase: a merged PR the base already holds is
// proposed for dropping even without a new release.
func TestMergedPRContainedInCurrentBase(t *testing.T) {
	e := newEnv(t)
	e.release("v4.2.1")
	e.recipe("v4.2.1", "pr: 101", "pr: 102")
	e.gh.MergePR(owner, repoName, 101, strings.Repeat("b", 40), time.Date(2026, 7, 1, 9, 0, 0, 0, time.UTC))
	rp := e.watch().Recipes[0]
	if got := actionKinds(rp); got != "drop PR #101, rebuild" {
		t.Errorf("actions: %s (error %s)", got, rp.Error)
	}
	if rp.PullRequests[0].ContainedIn != "base" || rp.PullRequests[1].ContainedIn != "" {
		t.Errorf("contained: %+v", rp.PullRequests)
	}
}

// TestConflictOnNewBase: PR 103 does not apply on v4.2.1: the plan names
// the file and hunk.
func TestConflictOnNewBase(t *testing.T) {
	e := newEnv(t)
	e.recipe("v4.1.1", "pr: 103", "patch: 0001-notes.patch")
	e.release("v4.2.1")
	p := e.watch()
	rp := p.Recipes[0]
	if got := actionKinds(rp); got != "rebase, conflict PR #103, rebuild" {
		t.Fatalf("actions: %s (error %s)", got, rp.Error)
	}
	c := rp.Rebase.Entries[0].Conflict
	if c == nil || c.File != "Makefile.versions" || !strings.HasPrefix(c.Hunk, "@@ ") || c.Line == 0 || rp.Rebase.Clean {
		t.Errorf("conflict: %+v", c)
	}
	if rp.Rebase.Entries[1].Result != TrialApplies {
		t.Errorf("the entry after the conflict was not tried on its own: %+v", rp.Rebase.Entries[1])
	}
	if !strings.Contains(rp.Actions[1].Reason, "Makefile.versions hunk @@") {
		t.Errorf("conflict action: %s", rp.Actions[1].Reason)
	}
}

// TestForcePush: a moved head asks for a re-sync with old and new commits.
func TestForcePush(t *testing.T) {
	e := newEnv(t)
	e.release("v4.2.1")
	e.recipe("v4.2.1", "pr: 102")
	old := e.fx.PRs[102].Head
	newHead := e.fx.ForcePush(t, 102)
	e.gh.AddFixturePR(e.fx, 102)
	rp := e.watch().Recipes[0]
	if len(rp.Actions) != 1 || rp.Actions[0].Kind != ActionResync || rp.Actions[0].Old != old || rp.Actions[0].New != newHead {
		t.Errorf("actions: %+v", rp.Actions)
	}
	if pr := rp.PullRequests[0]; !pr.HeadMoved || pr.LockedHead != old || pr.Head != newHead {
		t.Errorf("PR: %+v", pr)
	}
}

// TestConditionalRequests: a second run with nothing new sends only
// conditional requests, all answered 304, and no trial runs again.
func TestConditionalRequests(t *testing.T) {
	e := newEnv(t)
	e.recipe("v4.1.1", "pr: 101", "pr: 102", "patch: 0001-notes.patch")
	e.release("v4.2.1")
	first := e.watch()
	if first.Recipes[0].Error != "" || first.Recipes[0].Rebase == nil {
		t.Fatalf("first run: %+v", first.Recipes[0])
	}
	// The mirror goes away: a repeated trial would fail, a kept one does not.
	if err := os.RemoveAll(filepath.Join(e.cache, "git")); err != nil {
		t.Fatal(err)
	}
	e.gh.ResetLog()
	start := time.Now()
	second := e.watch()
	took := time.Since(start)
	st := e.gh.Stats()
	if second.Recipes[0].Error != "" {
		t.Fatal(second.Recipes[0].Error)
	}
	// releases, tags, two pull requests
	if st.Requests != 4 || st.NotModified != 4 || second.GitHub.Requests != 4 || second.GitHub.NotModified != 4 {
		t.Errorf("second run: server %+v, client %+v", st, second.GitHub)
	}
	for _, r := range e.gh.Requests() {
		if !r.IfNoneMatch {
			t.Errorf("unconditional request %s", r.Path)
		}
	}
	a, _ := json.Marshal(first.Recipes)
	b, _ := json.Marshal(second.Recipes)
	if !bytes.Equal(a, b) {
		t.Errorf("second plan differs:\n%s\n%s", a, b)
	}
	t.Logf("second run: %v, %d requests, %d not modified", took, st.Requests, st.NotModified)
}

// TestGitHubFailures: a rate limit and a dead network each give a clear
// error, exit 1, and leave the state as it was.
func TestGitHubFailures(t *testing.T) {
	tests := []struct {
		name   string
		break_ func(e *env)
		want   []string
	}{
		{"rate limit", func(e *env) { e.gh.RateLimitNext(10, time.Now().Add(42*time.Minute)) }, []string{"rate limit", "UTC"}},
		{"network down", func(e *env) { e.gh.Close() }, []string{"releases of checkpoint-restore/criu"}},
		{"server error", func(e *env) { e.gh.FailNext(10, 502) }, []string{"502"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.recipe("v4.1.1", "pr: 101")
			e.release("v4.2.1")
			if p := e.watch(); p.Recipes[0].Error != "" {
				t.Fatal(p.Recipes[0].Error)
			}
			before, err := os.ReadFile(filepath.Join(e.state, stateFile))
			if err != nil {
				t.Fatal(err)
			}
			// New input, so that a run that got through would change the state.
			e.gh.MergePR(owner, repoName, 101, strings.Repeat("c", 40), time.Now())
			tt.break_(e)
			p := e.watch()
			if p.ExitCode() != ExitError {
				t.Errorf("exit %d, want %d", p.ExitCode(), ExitError)
			}
			for _, w := range tt.want {
				if !strings.Contains(p.Recipes[0].Error, w) {
					t.Errorf("error lacks %q: %s", w, p.Recipes[0].Error)
				}
			}
			after, _ := os.ReadFile(filepath.Join(e.state, stateFile))
			if !bytes.Equal(before, after) {
				t.Error("a failed run changed the state")
			}
			var text bytes.Buffer
			p.Render(&text)
			if !strings.Contains(text.String(), "could not be checked") {
				t.Errorf("rendered:\n%s", text.String())
			}
		})
	}
}

func TestNoLockAsksForSync(t *testing.T) {
	e := newEnv(t)
	e.recipe("v4.1.1", "patch: 0001-notes.patch")
	if err := os.Remove(e.load().LockPath()); err != nil {
		t.Fatal(err)
	}
	p, err := Run(context.Background(), []*recipe.Recipe{e.load()}, e.opts())
	if err != nil {
		t.Fatal(err)
	}
	if got := actionKinds(p.Recipes[0]); got != "sync" || p.ExitCode() != ExitActionNeeded {
		t.Errorf("actions %q exit %d", got, p.ExitCode())
	}
}

func TestClaimOneInstance(t *testing.T) {
	dir := t.TempDir()
	a, err := Claim(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Claim(dir); err == nil || !strings.Contains(err.Error(), filepath.Join(dir, lockFile)) {
		t.Errorf("second claim: %v", err)
	}
	if err := a.Release(); err != nil {
		t.Fatal(err)
	}
	b, err := Claim(dir)
	if err != nil {
		t.Fatalf("claim after release: %v", err)
	}
	b.Release()
}

// messy tags must not pass as releases (nvchecker #70).
func TestMergeReleasesFilters(t *testing.T) {
	e := newEnv(t)
	for _, tag := range []string{"v4.2.1-rc1", "criu-4.2", "test", "v4.2.1.1", "v9.9.9-rc1", "v4.3", "nightly-2026-07-01", "v5.0.0"} {
		e.gh.AddTag(owner, repoName, fakegithub.Tag{Name: tag, CommitSHA: e.fx.Commits["v4.1.1"]})
	}
	e.gh.AddRelease(owner, repoName, fakegithub.Release{Tag: "v4.4.0", Draft: true})
	e.gh.AddRelease(owner, repoName, fakegithub.Release{Tag: "v4.3.5", Prerelease: true})
	gh := e.client()
	ctx := context.Background()
	rels, err := gh.Releases(ctx, owner, repoName)
	if err != nil {
		t.Fatal(err)
	}
	tags, err := gh.Tags(ctx, owner, repoName)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		filter func() Filter
		want   string
	}{
		{"stable only", func() Filter { return Filter{} }, "v5.0.0 v4.3 v4.1.1"},
		{"pre-releases", func() Filter { return Filter{Prereleases: true} }, "v9.9.9-rc1 v5.0.0 v4.3.5 v4.3 v4.2.1-rc1 v4.1.1"},
		{"range", func() Filter { r, _ := ParseRange(">=4.2, <5"); return Filter{Range: r} }, "v4.3"},
		{"pattern", func() Filter { return Filter{TagPattern: mustRegexp(`^criu-(.+)$`)} }, "criu-4.2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, r := range mergeReleases(rels, tags, tt.filter()) {
				got = append(got, r.Tag)
			}
			if strings.Join(got, " ") != tt.want {
				t.Errorf("got %v, want %s", got, tt.want)
			}
		})
	}
}
