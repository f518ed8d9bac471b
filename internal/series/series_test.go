package series

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/criu-forge/criu-forge/internal/ghapi"
	"github.com/criu-forge/criu-forge/internal/patch"
	"github.com/criu-forge/criu-forge/internal/recipe"
	"github.com/criu-forge/criu-forge/internal/testutil/fakegithub"
	"github.com/criu-forge/criu-forge/internal/testutil/upstream"
)

// env is one test's upstream, fake GitHub, cache and recipe folder.
type env struct {
	t     *testing.T
	fx    *upstream.Fixture
	gh    *fakegithub.Server
	cache string
	root  string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, fx: upstream.New(t), gh: fakegithub.New(t), cache: t.TempDir(), root: t.TempDir()}
	for _, n := range []int{101, 102, 103} {
		e.gh.AddFixturePR(e.fx, n)
	}
	if err := os.MkdirAll(filepath.Join(e.root, "recipes"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(e.root, "patches", "fx"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.root, "patches", "fx", "0001-notes.patch"), []byte(upstream.NotesPatch), 0o644); err != nil {
		t.Fatal(err)
	}
	return e
}

// recipe writes and loads a recipe based on tag with the given series.
func (e *env) recipe(tag, series string) *recipe.Recipe {
	e.t.Helper()
	body := `name: fx
upstream:
  version: ` + strings.TrimPrefix(tag, "v") + `
  github: checkpoint-restore/criu
  sources:
    - git: {url: "` + e.fx.Dir + `", ref: ` + tag + `}
series:
` + series + `
build:
  deps: {deb: [gcc]}
targets:
  - {distro: debian, release: "12"}
`
	path := filepath.Join(e.root, "recipes", "fx.yaml")
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		e.t.Fatal(err)
	}
	r, _, err := recipe.Load(path)
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

func (e *env) opts() Options {
	gh, err := ghapi.New(ghapi.Options{BaseURL: e.gh.URL(), Retries: -1})
	if err != nil {
		e.t.Fatal(err)
	}
	return Options{CacheDir: e.cache, GitHub: gh}
}

func gitOut(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

func TestSyncThenPrepare(t *testing.T) {
	e := newEnv(t)
	r := e.recipe("v4.1.1", "  - pr: 101\n  - patch: 0001-notes.patch\n")
	ctx := context.Background()

	res, err := Sync(ctx, r, e.opts())
	if err != nil {
		t.Fatal(err)
	}
	l := res.Lock
	if !res.Changed || l.Revision != 1 {
		t.Errorf("first sync: changed %v revision %d", res.Changed, l.Revision)
	}
	if got := l.Upstream[0].Commit; got != e.fx.Commits["v4.1.1"] {
		t.Errorf("upstream pinned to %s, want the tag's commit %s (not the tag object %s)", got, e.fx.Commits["v4.1.1"], e.fx.TagObjects["v4.1.1"])
	}
	pr := l.Entries[0]
	if pr.Head != e.fx.PRs[101].Head || len(pr.Patches) != 2 || pr.Patches[0].Commit != e.fx.PRs[101].Commits[0] || !strings.HasPrefix(pr.Patches[0].SHA256, "sha256:") {
		t.Errorf("PR entry: %+v", pr)
	}
	if local := l.Entries[1]; len(local.Patches) != 1 || local.Patches[0].Subject != "Add a note for packagers" {
		t.Errorf("local patch entry: %+v", local)
	}
	if _, err := os.Stat(r.LockPath()); err != nil {
		t.Fatal(err)
	}

	out := filepath.Join(t.TempDir(), "tree")
	p, err := Prepare(ctx, r, out, e.opts())
	if err != nil {
		t.Fatal(err)
	}
	if p.Applied() != 3 {
		t.Errorf("applied %d patches, want 3", p.Applied())
	}
	log := gitOut(t, out, "log", "--format=%s")
	if n := len(strings.Split(log, "\n")); n != 4 {
		t.Errorf("want base + 3 commits, git log:\n%s", log)
	}
	trailers := gitOut(t, out, "log", "-1", "--skip=1", "--format=%(trailers:key=Forge-Origin,valueonly)")
	if !strings.Contains(trailers, e.fx.PRs[101].Commits[1]) {
		t.Errorf("PR commit lacks its Forge-Origin trailer: %q", trailers)
	}
	if s := gitOut(t, out, "status", "--porcelain"); s != "" {
		t.Errorf("prepared tree is not clean:\n%s", s)
	}
	want := gitOut(t, e.fx.Dir, "rev-parse", "v4.2.1:criu/files.c")
	if got := gitOut(t, out, "rev-parse", "HEAD:criu/files.c"); got != want {
		t.Errorf("criu/files.c after PR 101 is %s, want v4.2.1's %s", got, want)
	}

	// A second sync with nothing new keeps the revision and the file.
	again, err := Sync(ctx, r, e.opts())
	if err != nil {
		t.Fatal(err)
	}
	if again.Changed || again.Lock.Revision != 1 || len(again.Drift) != 0 {
		t.Errorf("unchanged sync: changed %v revision %d drift %v", again.Changed, again.Lock.Revision, again.Drift)
	}

	// The upstream and GitHub gone: prepare still works from the lock and
	// the cache, online (it fetches only what the cache lacks) and offline.
	if err := os.RemoveAll(e.fx.Dir); err != nil {
		t.Fatal(err)
	}
	e.gh.Close()
	online, err := Prepare(ctx, r, filepath.Join(t.TempDir(), "tree"), e.opts())
	if err != nil {
		t.Fatalf("prepare with the upstream down but everything cached: %v", err)
	}
	if online.Head != p.Head {
		t.Errorf("prepare gave %s, before %s", online.Head, p.Head)
	}
	out2 := filepath.Join(t.TempDir(), "tree")
	offline := e.opts()
	offline.Offline = true
	p2, err := Prepare(ctx, r, out2, offline)
	if err != nil {
		t.Fatalf("offline prepare from cache: %v", err)
	}
	if p2.Head != p.Head {
		t.Errorf("offline prepare gave %s, online %s: prepare must be deterministic", p2.Head, p.Head)
	}
}

func TestPrepareContainedEntry(t *testing.T) {
	e := newEnv(t)
	r := e.recipe("v4.2.1", "  - pr: 101\n  - pr: 102\n")
	ctx := context.Background()
	if _, err := Sync(ctx, r, e.opts()); err != nil {
		t.Fatal(err)
	}
	p, err := Prepare(ctx, r, filepath.Join(t.TempDir(), "tree"), e.opts())
	if err != nil {
		t.Fatal(err)
	}
	var statuses []string
	for _, o := range p.Outcomes {
		statuses = append(statuses, o.Status.String())
	}
	if got := strings.Join(statuses, ","); got != "contained (skipped),contained (skipped),applied,applied" {
		t.Errorf("outcomes: %s", got)
	}

	strict := e.recipe("v4.2.1", "  - pr: 101\napply: {strict: true}\n")
	if _, err := Sync(ctx, strict, e.opts()); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "tree")
	_, err = Prepare(ctx, strict, out, e.opts())
	var contained *patch.ContainedError
	if !errors.As(err, &contained) {
		t.Fatalf("strict: want a ContainedError, got %v", err)
	}
	if _, statErr := os.Stat(out); !os.IsNotExist(statErr) {
		t.Errorf("strict failure left %s behind", out)
	}
}

func TestPrepareConflict(t *testing.T) {
	e := newEnv(t)
	r := e.recipe("v4.2.1", "  - pr: 103\n")
	ctx := context.Background()
	if _, err := Sync(ctx, r, e.opts()); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "tree")
	_, err := Prepare(ctx, r, out, e.opts())
	var conflict *patch.ConflictError
	if !errors.As(err, &conflict) {
		t.Fatalf("want a ConflictError, got %v", err)
	}
	msg := err.Error()
	for _, want := range []string{"patch 1/1", "Makefile.versions", "@@ ", "re-sync the series, drop the entry, or rebase it"} {
		if !strings.Contains(msg, want) {
			t.Errorf("conflict message lacks %q:\n%s", want, msg)
		}
	}
	if _, statErr := os.Stat(out); !os.IsNotExist(statErr) {
		t.Errorf("a failed prepare left %s behind", out)
	}
}

func TestSyncReportsDrift(t *testing.T) {
	e := newEnv(t)
	r := e.recipe("v4.2.1", "  - pr: 102\n")
	ctx := context.Background()
	first, err := Sync(ctx, r, e.opts())
	if err != nil {
		t.Fatal(err)
	}
	old := e.fx.PRs[102].Head
	newHead := e.fx.ForcePush(t, 102)
	e.gh.AddFixturePR(e.fx, 102)

	// prepare keeps using the lock, whatever the PR does now.
	p, err := Prepare(ctx, r, filepath.Join(t.TempDir(), "tree"), e.opts())
	if err != nil {
		t.Fatal(err)
	}
	if p.Applied() != 2 {
		t.Errorf("prepare after force-push applied %d patches, want the 2 locked", p.Applied())
	}

	res, err := Sync(ctx, r, e.opts())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Drift) != 1 || res.Drift[0].Old != old || res.Drift[0].New != newHead {
		t.Errorf("drift: %+v (old %s new %s)", res.Drift, old, newHead)
	}
	if !res.Changed || res.Lock.Revision != first.Lock.Revision+1 || len(res.Lock.Entries[0].Patches) != 3 {
		t.Errorf("after drift: changed %v revision %d patches %d", res.Changed, res.Lock.Revision, len(res.Lock.Entries[0].Patches))
	}
}

func TestCommitAndRangeEntries(t *testing.T) {
	e := newEnv(t)
	pr := e.fx.PRs[101]
	r := e.recipe("v4.1.1", "  - commit: "+pr.Commits[0]+"\n  - range: "+pr.Commits[0]+".."+pr.Head+"\n")
	ctx := context.Background()
	res, err := Sync(ctx, r, e.opts())
	if err != nil {
		t.Fatal(err)
	}
	if c := res.Lock.Entries[0].Patches; len(c) != 1 || c[0].Commit != pr.Commits[0] {
		t.Errorf("commit entry: %+v", c)
	}
	if c := res.Lock.Entries[1].Patches; len(c) != 1 || c[0].Commit != pr.Commits[1] {
		t.Errorf("range entry: %+v", c)
	}
	p, err := Prepare(ctx, r, filepath.Join(t.TempDir(), "tree"), e.opts())
	if err != nil {
		t.Fatal(err)
	}
	if p.Applied() != 2 {
		t.Errorf("applied %d, want 2", p.Applied())
	}
}

func TestUntilSkipsEntry(t *testing.T) {
	e := newEnv(t)
	r := e.recipe("v4.2.1", "  - {pr: 103, until: \"4.2\"}\n")
	res, err := Sync(context.Background(), r, e.opts())
	if err != nil {
		t.Fatal(err)
	}
	if res.Lock.Entries[0].Skipped == "" || len(e.gh.Requests()) != 0 {
		t.Errorf("entry not skipped without asking GitHub: %+v, %d requests", res.Lock.Entries[0], len(e.gh.Requests()))
	}
}

// TestFailures: each failure class gives its clear error and leaves no
// output behind.
func TestFailures(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name  string
		setup func(e *env) (*recipe.Recipe, Options, func() error)
		want  []string
	}{
		{"no lock", func(e *env) (*recipe.Recipe, Options, func() error) {
			r := e.recipe("v4.2.1", "  - pr: 102\n")
			return r, e.opts(), nil
		}, []string{"no series.lock", "run `criu-forge sync`"}},
		{"recipe changed since lock", func(e *env) (*recipe.Recipe, Options, func() error) {
			r := e.recipe("v4.2.1", "  - pr: 102\n")
			if _, err := Sync(ctx, r, e.opts()); err != nil {
				e.t.Fatal(err)
			}
			return e.recipe("v4.2.1", "  - pr: 102\n  - patch: 0001-notes.patch\n"), e.opts(), nil
		}, []string{"changed since", "run `criu-forge sync"}},
		{"tampered lock", func(e *env) (*recipe.Recipe, Options, func() error) {
			r := e.recipe("v4.2.1", "  - pr: 102\n")
			res, err := Sync(ctx, r, e.opts())
			if err != nil {
				e.t.Fatal(err)
			}
			res.Lock.Entries[0].Patches[1].SHA256 = "sha256:" + strings.Repeat("0", 64)
			if err := res.Lock.Write(r.LockPath()); err != nil {
				e.t.Fatal(err)
			}
			return r, e.opts(), nil
		}, []string{"series[0] PR #102", "the lock pins sha256:0000", "content changed"}},
		{"offline with an empty cache", func(e *env) (*recipe.Recipe, Options, func() error) {
			r := e.recipe("v4.2.1", "  - pr: 102\n")
			if _, err := Sync(ctx, r, e.opts()); err != nil {
				e.t.Fatal(err)
			}
			o := e.opts()
			o.Offline, o.CacheDir = true, e.t.TempDir()
			return r, o, nil
		}, []string{"offline"}},
		{"rate limited", func(e *env) (*recipe.Recipe, Options, func() error) {
			r := e.recipe("v4.2.1", "  - pr: 102\n")
			e.gh.RateLimitNext(5, time.Now().Add(42*time.Minute))
			o := e.opts()
			return r, o, func() error { _, err := Sync(ctx, r, o); return err }
		}, []string{"rate limit", "UTC"}},
		{"unknown PR", func(e *env) (*recipe.Recipe, Options, func() error) {
			r := e.recipe("v4.2.1", "  - pr: 999\n")
			o := e.opts()
			return r, o, func() error { _, err := Sync(ctx, r, o); return err }
		}, []string{"series[0] PR #999", "not found"}},
		{"upstream down", func(e *env) (*recipe.Recipe, Options, func() error) {
			r := e.recipe("v4.2.1", "")
			if err := os.RemoveAll(e.fx.Dir); err != nil {
				e.t.Fatal(err)
			}
			o := e.opts()
			return r, o, func() error { _, err := Sync(ctx, r, o); return err }
		}, []string{"no upstream source answered", "git:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			r, opts, run := tt.setup(e)
			out := filepath.Join(t.TempDir(), "tree")
			if run == nil {
				run = func() error { _, err := Prepare(ctx, r, out, opts); return err }
			}
			err := run()
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			if _, statErr := os.Stat(out); !os.IsNotExist(statErr) {
				t.Errorf("failure left %s behind", out)
			}
		})
	}
}
