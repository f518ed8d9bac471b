package watch

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/criu-forge/criu-forge/internal/ghapi"
	"github.com/criu-forge/criu-forge/internal/recipe"
	"github.com/criu-forge/criu-forge/internal/series"
	"github.com/criu-forge/criu-forge/internal/testutil/fakegithub"
	"github.com/criu-forge/criu-forge/internal/testutil/upstream"
)

// env is one test's fixture upstream, fake GitHub, cache and recipe folder.
type env struct {
	t     testing.TB
	fx    *upstream.Fixture
	gh    *fakegithub.Server
	cache string
	state string
	root  string
}

const owner, repoName = "checkpoint-restore", "criu"

func newEnv(t testing.TB) *env {
	t.Helper()
	e := &env{t: t, fx: upstream.New(t), gh: fakegithub.New(t), cache: t.TempDir(), root: t.TempDir()}
	e.state = filepath.Join(e.cache, "watch")
	for _, n := range []int{101, 102, 103} {
		e.gh.AddFixturePR(e.fx, n)
	}
	for _, d := range []string{"recipes", filepath.Join("patches", "fx")} {
		if err := os.MkdirAll(filepath.Join(e.root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(e.root, "patches", "fx", "0001-notes.patch"), []byte(upstream.NotesPatch), 0o644); err != nil {
		t.Fatal(err)
	}
	e.release("v4.1.1")
	return e
}

// release publishes a fixture tag as a GitHub release and a tag.
func (e *env) release(tag string) {
	e.gh.AddTag(owner, repoName, fakegithub.Tag{Name: tag, CommitSHA: e.fx.Commits[tag]})
	e.gh.AddRelease(owner, repoName, fakegithub.Release{Tag: tag, Name: "CRIU " + tag, PublishedAt: time.Date(2026, 7, 20, 12, 0, 0, 0, time.UTC)})
}

func (e *env) recipePath() string { return e.pathOf("fx") }

func (e *env) pathOf(name string) string { return filepath.Join(e.root, "recipes", name+".yaml") }

// recipe writes and loads the recipe fx on tag with the given series
// entries (YAML lines) and syncs its lock.
func (e *env) recipe(tag string, entries ...string) *recipe.Recipe {
	e.t.Helper()
	return e.named("fx", tag, entries...)
}

// named is recipe for another recipe name (its patch folder gets the
// local patch too).
func (e *env) named(name, tag string, entries ...string) *recipe.Recipe {
	e.t.Helper()
	dir := filepath.Join(e.root, "patches", name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "0001-notes.patch"), []byte(upstream.NotesPatch), 0o644); err != nil {
		e.t.Fatal(err)
	}
	body := `# The fixture recipe.
name: ` + name + `
upstream:
  version: ` + strings.TrimPrefix(tag, "v") + `   # the release
  github: checkpoint-restore/criu
  sources:
    - git: {url: "` + e.fx.Dir + `", ref: ` + tag + `, commit: ` + e.fx.Commits[tag][:12] + `}
series:
`
	for _, s := range entries {
		body += "  - " + s + "\n"
	}
	body += `
build:
  deps: {deb: [gcc]}
targets:
  - {distro: debian, release: "12"}
`
	if err := os.WriteFile(e.pathOf(name), []byte(body), 0o644); err != nil {
		e.t.Fatal(err)
	}
	r := e.loadNamed(name)
	if _, err := series.Sync(context.Background(), r, e.seriesOpts()); err != nil {
		e.t.Fatal(err)
	}
	return r
}

func (e *env) load() *recipe.Recipe {
	e.t.Helper()
	return e.loadNamed("fx")
}

func (e *env) loadNamed(name string) *recipe.Recipe {
	e.t.Helper()
	r, _, err := recipe.Load(e.pathOf(name))
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

func (e *env) client() *ghapi.Client {
	gh, err := ghapi.New(ghapi.Options{BaseURL: e.gh.URL(), Retries: -1, StateDir: filepath.Join(e.cache, "github")})
	if err != nil {
		e.t.Fatal(err)
	}
	return gh
}

func (e *env) seriesOpts() series.Options {
	return series.Options{CacheDir: e.cache, GitHub: e.client()}
}

func (e *env) opts() Options {
	return Options{CacheDir: e.cache, StateDir: e.state, GitHub: e.client()}
}

// watch runs one check of the recipe file as it is now.
func (e *env) watch() *Plan {
	e.t.Helper()
	p, err := Run(context.Background(), []*recipe.Recipe{e.load()}, e.opts())
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

func actionKinds(rp RecipePlan) string {
	var out []string
	for _, a := range rp.Actions {
		s := a.Kind
		if a.Entry != "" {
			s += " " + a.Entry
		}
		out = append(out, s)
	}
	return strings.Join(out, ", ")
}
