package plan

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/criu-forge/criu-forge/internal/build"
	"github.com/criu-forge/criu-forge/internal/pipeline"
	"github.com/criu-forge/criu-forge/internal/recipe"
	"github.com/criu-forge/criu-forge/internal/sandbox"
	"github.com/criu-forge/criu-forge/internal/testutil"
)

func shippedRecipe(t *testing.T) *recipe.Recipe {
	t.Helper()
	r, _, err := recipe.Load(filepath.Join(testutil.RepoRoot(t), "recipes", "criu-pidfd.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestMakeShippedRecipe plans the shipped recipe from its committed lock on
// a machine that has built nothing: every target, input keys, no build keys.
func TestMakeShippedRecipe(t *testing.T) {
	r := shippedRecipe(t)
	opts := Options{CacheDir: t.TempDir(), OutDir: t.TempDir(), Runner: "bubblewrap", ToolVersion: "1.2.3"}
	p, err := Make(r, opts)
	if err != nil {
		t.Fatal(err)
	}
	if p.Source.Head != nil || !strings.Contains(p.Source.HeadUnknown, "not prepared") || !strings.HasPrefix(p.Source.ID, "sha256:") {
		t.Errorf("source: %+v", p.Source)
	}
	var ids []string
	for i, pt := range p.Targets {
		ids = append(ids, pt.ID)
		if pt.BuildKey != nil || pt.BuildKeyUnknown == "" || pt.Output != "missing" {
			t.Errorf("%s: build key %v (%q), output %s", pt.ID, pt.BuildKey, pt.BuildKeyUnknown, pt.Output)
		}
		if m := p.Matrix.Include[i]; m.Target != pt.ID || m.InputKey != pt.InputKey || m.Runner != "bubblewrap" {
			t.Errorf("matrix entry %d: %+v for %+v", i, m, pt)
		}
	}
	if got := strings.Join(ids, " "); got != "ubuntu-24.04 ubuntu-22.04 debian-12 rocky-9" {
		t.Errorf("targets %s", got)
	}

	// The same plan from another cache and output folder: the input keys
	// do not depend on the machine.
	other, err := Make(r, Options{CacheDir: t.TempDir(), OutDir: t.TempDir(), Runner: "bubblewrap", ToolVersion: "1.2.3"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range p.Targets {
		if p.Targets[i].InputKey != other.Targets[i].InputKey {
			t.Errorf("%s: input key differs between two machines", p.Targets[i].ID)
		}
	}

	// --target selects, and a wrong one names the recipe's targets.
	one, err := Make(r, Options{OutDir: t.TempDir(), Targets: []string{"debian-12"}})
	if err != nil || len(one.Targets) != 1 || one.Targets[0].Codename != "bookworm" || one.Targets[0].Family != "deb" {
		t.Fatalf("--target debian-12: %+v %v", one, err)
	}
	if _, err := Make(r, Options{Targets: []string{"plan9"}}); err == nil || !strings.Contains(err.Error(), "debian-12") {
		t.Errorf("unknown target: %v", err)
	}
	if _, err := Make(r, Options{Runner: "lxc"}); err == nil || !strings.Contains(err.Error(), "bubblewrap, docker, podman") {
		t.Errorf("unknown runner: %v", err)
	}
	if p, err := Make(r, Options{Runner: "bwrap", OutDir: t.TempDir()}); err != nil || p.Targets[0].Runner != "bubblewrap" {
		t.Errorf("bwrap is bubblewrap: %v", err)
	}
}

// TestInputKeyCovers changes one input at a time: what decides the output
// changes the key; where it is planned does not.
func TestInputKeyCovers(t *testing.T) {
	base := shippedRecipe(t)
	src := Source{ID: "sha256:aa"}
	key := func(mutate func(r *recipe.Recipe, tg *recipe.Target, src *Source, runner *string, opts *Options)) string {
		r := *base
		r.Build.Deps = map[string][]string{"deb": append([]string(nil), base.Build.Deps["deb"]...)}
		r.Build.MakeVars = map[string]string{}
		for k, v := range base.Build.MakeVars {
			r.Build.MakeVars[k] = v
		}
		tg := base.Targets[2] // debian-12
		s, runner, opts := src, "bubblewrap", Options{OutDir: t.TempDir(), ToolVersion: "1.0.0"}
		mutate(&r, &tg, &s, &runner, &opts)
		return planTarget(&r, tg, s, runner, nil, opts).InputKey
	}
	none := func(*recipe.Recipe, *recipe.Target, *Source, *string, *Options) {}
	want := key(none)
	tests := []struct {
		name    string
		mutate  func(r *recipe.Recipe, tg *recipe.Target, src *Source, runner *string, opts *Options)
		changes bool
	}{
		{"nothing", none, false},
		{"another output folder", func(_ *recipe.Recipe, _ *recipe.Target, _ *Source, _ *string, o *Options) { o.OutDir = "elsewhere" }, false},
		{"another cache", func(_ *recipe.Recipe, _ *recipe.Target, _ *Source, _ *string, o *Options) { o.CacheDir = "/elsewhere" }, false},
		{"a prepared head is known", func(_ *recipe.Recipe, _ *recipe.Target, s *Source, _ *string, _ *Options) { h := "abc"; s.Head = &h }, false},
		{"source", func(_ *recipe.Recipe, _ *recipe.Target, s *Source, _ *string, _ *Options) { s.ID = "sha256:bb" }, true},
		{"build dependency", func(r *recipe.Recipe, _ *recipe.Target, _ *Source, _ *string, _ *Options) {
			r.Build.Deps["deb"] = append(r.Build.Deps["deb"], "libdrm-dev")
		}, true},
		{"make variable", func(r *recipe.Recipe, _ *recipe.Target, _ *Source, _ *string, _ *Options) {
			r.Build.MakeVars["V"] = "1"
		}, true},
		{"build steps", func(r *recipe.Recipe, _ *recipe.Target, _ *Source, _ *string, _ *Options) {
			r.Build.Steps = []string{"make"}
		}, true},
		{"mirror", func(_ *recipe.Recipe, tg *recipe.Target, _ *Source, _ *string, _ *Options) {
			tg.Mirror = "http://mirror.invalid/debian"
		}, true},
		{"architecture", func(_ *recipe.Recipe, tg *recipe.Target, _ *Source, _ *string, _ *Options) { tg.Arch = "arm64" }, true},
		{"formats", func(_ *recipe.Recipe, tg *recipe.Target, _ *Source, _ *string, _ *Options) {
			tg.Formats = []string{"deb", "rpm"}
		}, true},
		{"container runner", func(_ *recipe.Recipe, _ *recipe.Target, _ *Source, r *string, _ *Options) { *r = "docker" }, true},
		{"criu-forge release", func(_ *recipe.Recipe, _ *recipe.Target, _ *Source, _ *string, o *Options) { o.ToolVersion = "1.1.0" }, true},
	}
	for _, tt := range tests {
		if got := key(tt.mutate); (got != want) != tt.changes {
			t.Errorf("%s: key changed = %v, want %v", tt.name, got != want, tt.changes)
		}
	}
}

// TestBuildKeyWhenBuilderCached: with the source prepared and the builder
// cached, the build key is build.Key over the head and the builder id, and
// the output is judged against the build record.
func TestBuildKeyWhenBuilderCached(t *testing.T) {
	r := shippedRecipe(t)
	cache, out := t.TempDir(), t.TempDir()
	p, err := Make(r, Options{CacheDir: cache, OutDir: out, Targets: []string{"debian-12"}, Runner: "bubblewrap"})
	if err != nil {
		t.Fatal(err)
	}
	head := strings.Repeat("ab", 20)
	base := time.Date(2025, 11, 20, 10, 0, 0, 0, time.UTC)
	writeJSON(t, filepath.Join(out, "source.json"), map[string]any{
		"head": head, "recipeDigest": p.Source.RecipeDigest, "contentDigest": p.Source.ContentDigest, "baseDate": base,
	})
	tg := r.Targets[2]
	packages, err := sandbox.PackageSet(r.Build.Deps["deb"])
	if err != nil {
		t.Fatal(err)
	}
	builder := sandbox.Builder{Key: "0123456789abcdef01234567", ID: "feedfacefeedfacefeedface",
		Target:   sandbox.Target{Name: "debian-12", Distro: "debian", Release: "bookworm", Arch: "amd64", Family: "deb"},
		Packages: packages}
	writeJSON(t, filepath.Join(cache, "builders", builder.Key, "builder.json"), builder)

	p, err = Make(r, Options{CacheDir: cache, OutDir: out, Targets: []string{"debian-12"}, Runner: "bubblewrap"})
	if err != nil {
		t.Fatal(err)
	}
	pt := p.Targets[0]
	want := build.Key(pipeline.BuildSpec(r, tg, head, head[:12], base.Unix()), builder.ID)
	if p.Source.Head == nil || *p.Source.Head != head {
		t.Fatalf("head not taken from the record: %+v", p.Source)
	}
	if pt.BuildKey == nil || *pt.BuildKey != want || pt.BuilderID != builder.ID {
		t.Fatalf("build key %v (%s), want %s", pt.BuildKey, pt.BuildKeyUnknown, want)
	}
	if pt.Output != "missing" {
		t.Errorf("output %s before any build", pt.Output)
	}
	for _, tt := range []struct{ key, state string }{{want, "current"}, {"0000", "stale"}} {
		writeJSON(t, filepath.Join(out, "debian-12", "build.json"), build.Record{Key: tt.key})
		p, _ = Make(r, Options{CacheDir: cache, OutDir: out, Targets: []string{"debian-12"}, Runner: "bubblewrap"})
		if got := p.Targets[0].Output; got != tt.state {
			t.Errorf("record with key %s: output %s, want %s", tt.key, got, tt.state)
		}
	}

	// A builder for other packages does not count; two that fit are
	// ambiguous (different archive sources), so no key.
	other := builder
	other.Key, other.ID, other.Sources = "1123456789abcdef01234567", "beefbeefbeefbeefbeefbeef", []string{"deb http://other.invalid/debian bookworm main"}
	writeJSON(t, filepath.Join(cache, "builders", other.Key, "builder.json"), other)
	p, _ = Make(r, Options{CacheDir: cache, OutDir: out, Targets: []string{"debian-12"}, Runner: "bubblewrap"})
	if pt := p.Targets[0]; pt.BuildKey != nil || !strings.Contains(pt.BuildKeyUnknown, "2 cached builders") || pt.Output != "unknown" {
		t.Errorf("two fitting builders: %v %q %s", pt.BuildKey, pt.BuildKeyUnknown, pt.Output)
	}

	// A source prepared from another lock gives no head.
	writeJSON(t, filepath.Join(out, "source.json"), map[string]any{"head": head, "recipeDigest": "x", "contentDigest": "y"})
	p, _ = Make(r, Options{CacheDir: cache, OutDir: out, Runner: "bubblewrap"})
	if p.Source.Head != nil || !strings.Contains(p.Source.HeadUnknown, "another lock") {
		t.Errorf("stale source record: %+v", p.Source)
	}
}

func TestPlanJSONFieldNames(t *testing.T) {
	r := shippedRecipe(t)
	p, err := Make(r, Options{OutDir: t.TempDir(), Targets: []string{"rocky-9"}, Runner: "docker", ToolVersion: "1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	// Keys vary with the code; the shape is what workflows depend on.
	p.Source.ID, p.Source.RecipeDigest, p.Source.ContentDigest = "ID", "RECIPE", "CONTENT"
	p.Targets[0].InputKey, p.Matrix.Include[0].InputKey = "INPUT", "INPUT"
	p.Source.HeadUnknown, p.Source.LockRevision = "WHY", 1
	data, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	testutil.Golden(t, "plan-rocky-9.json", append(data, '\n'))
}

func writeJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestRunnerName(t *testing.T) {
	tests := []struct {
		flag, recipe, env, want string
	}{
		{"docker", "podman", "bubblewrap", "docker"},
		{"", "podman", "docker", "podman"},
		{"", "", "docker", "docker"},
		{"bwrap", "", "", "bubblewrap"},
		{"", "", "lxc", "error"},
	}
	for _, tt := range tests {
		t.Setenv(sandbox.EnvRunner, tt.env)
		got, err := runnerName(tt.flag, tt.recipe)
		if err != nil {
			got = "error"
		}
		if got != tt.want {
			t.Errorf("flag %q recipe %q env %q: %s (%v), want %s", tt.flag, tt.recipe, tt.env, got, err, tt.want)
		}
	}
}
