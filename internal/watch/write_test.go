package watch

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/criu-forge/criu-forge/internal/recipe"
	"github.com/criu-forge/criu-forge/internal/series"
	"github.com/criu-forge/criu-forge/internal/testutil"
)

// TestWriteCarriesRecipeForward: from v4.1.1 with PR 101 and a local patch
// to v4.2.1: PR 101 leaves (contained), the ref and pin move, comments and
// layout stay, and lint and prepare accept the result.
func TestWriteCarriesRecipeForward(t *testing.T) {
	e := newEnv(t)
	e.recipe("v4.1.1", "pr: 101   # pidfd fixes, merged upstream", "patch: 0001-notes.patch")
	oldLock, err := series.ReadLock(e.load().LockPath())
	if err != nil {
		t.Fatal(err)
	}
	e.release("v4.2.1")
	e.gh.MergePR(owner, repoName, 101, strings.Repeat("d", 40), time.Date(2026, 7, 1, 9, 0, 0, 0, time.UTC))
	rp := e.watch().Recipes[0]

	ctx := context.Background()
	res, err := Write(ctx, e.load(), rp, e.seriesOpts())
	if err != nil {
		t.Fatal(err)
	}
	if res.From != "4.1.1" || res.To != "4.2.1" || strings.Join(res.Dropped, ",") != "PR #101" || !res.Lock.Changed {
		t.Errorf("write result: %+v", res)
	}
	data, err := os.ReadFile(e.recipePath())
	if err != nil {
		t.Fatal(err)
	}
	// The fixture's path and commit ids vary with the machine and fixture
	// version; the golden file is about layout.
	golden := strings.NewReplacer(e.fx.Dir, "FIXTURE", e.fx.Commits["v4.2.1"], "V4.2.1-COMMIT").Replace(string(data))
	testutil.Golden(t, "write-forward.yaml", []byte(golden))

	r, warns, err := recipe.Load(e.recipePath()) // what lint does
	if err != nil || len(warns) != 0 {
		t.Fatalf("lint: %v %v", err, warns)
	}
	lock, err := series.ReadLock(r.LockPath())
	if err != nil {
		t.Fatal(err)
	}
	if lock.Upstream[0].Commit != e.fx.Commits["v4.2.1"] || lock.Revision != oldLock.Revision+1 || len(lock.Entries) != 1 {
		t.Errorf("lock: upstream %s revision %d entries %d", lock.Upstream[0].Commit, lock.Revision, len(lock.Entries))
	}
	p, err := series.Prepare(ctx, r, filepath.Join(t.TempDir(), "tree"), series.Options{CacheDir: e.cache, Offline: true})
	if err != nil {
		t.Fatalf("prepare after write: %v", err)
	}
	if p.Applied() != 1 || p.Base.Commit.String() != e.fx.Commits["v4.2.1"] {
		t.Errorf("prepared: %d applied on %s", p.Applied(), p.Base.Commit)
	}

	// Carried forward, the recipe is current: the next watch has nothing to do.
	if next := e.watch(); next.ExitCode() != ExitNothingToDo {
		t.Errorf("after write: exit %d, actions %s", next.ExitCode(), actionKinds(next.Recipes[0]))
	}
}

func TestWriteRefusesConflicts(t *testing.T) {
	e := newEnv(t)
	e.recipe("v4.1.1", "pr: 103")
	e.release("v4.2.1")
	before, _ := os.ReadFile(e.recipePath())
	_, err := Write(context.Background(), e.load(), e.watch().Recipes[0], e.seriesOpts())
	if err == nil || !strings.Contains(err.Error(), "Makefile.versions") {
		t.Errorf("write with a conflict: %v", err)
	}
	after, _ := os.ReadFile(e.recipePath())
	if string(before) != string(after) {
		t.Error("a refused write changed the recipe")
	}
	if _, err := Write(context.Background(), e.load(), RecipePlan{Actions: []Action{}}, e.seriesOpts()); !errors.Is(err, ErrNothingToWrite) {
		t.Errorf("empty plan: %v", err)
	}
}

// TestWriteResyncFailureRestores: a re-sync that fails (the upstream went
// away) puts the recipe back and leaves the lock alone.
func TestWriteResyncFailureRestores(t *testing.T) {
	e := newEnv(t)
	e.recipe("v4.1.1", "pr: 101", "patch: 0001-notes.patch")
	e.release("v4.2.1")
	rp := e.watch().Recipes[0]
	before, _ := os.ReadFile(e.recipePath())
	lockBefore, _ := os.ReadFile(e.load().LockPath())
	if err := os.RemoveAll(e.fx.Dir); err != nil {
		t.Fatal(err)
	}
	_, err := Write(context.Background(), e.load(), rp, e.seriesOpts())
	if err == nil || !strings.Contains(err.Error(), "back as it was") || !strings.Contains(err.Error(), "no upstream source answered") {
		t.Fatalf("write with GitHub down: %v", err)
	}
	after, _ := os.ReadFile(e.recipePath())
	lockAfter, _ := os.ReadFile(e.load().LockPath())
	if string(before) != string(after) || string(lockBefore) != string(lockAfter) {
		t.Error("a failed write changed the recipe or the lock")
	}
}

func TestEditRecipe(t *testing.T) {
	tests := []struct {
		name string
		in   string
		ed   recipeEdit
		want string
		err  string
	}{
		{
			name: "quoted values keep their quotes",
			in:   "upstream:\n  version: \"4.1\"\n  sources:\n    - git:\n        url: x\n        ref: 'v4.1'\n        commit: abc # pin\n",
			ed:   recipeEdit{Version: "4.2", Ref: "v4.2", Commit: "def", GitSource: 0},
			want: "upstream:\n  version: \"4.2\"\n  sources:\n    - git:\n        url: x\n        ref: 'v4.2'\n        commit: def # pin\n",
		},
		{
			name: "a plain value that would read as a number is quoted",
			in:   "upstream:\n  version: 4.1.1\n",
			ed:   recipeEdit{Version: "4.2"},
			want: "upstream:\n  version: \"4.2\"\n",
		},
		{
			name: "items with comments and bodies",
			in:   "series:\n  # first\n  - pr: 1\n    note: one\n\n  # second\n  - pr: 2\n    commits:\n      - a\n  - pr: 3 # third\ntargets: []\n",
			ed:   recipeEdit{Drop: []int{1, 2}},
			want: "series:\n  # first\n  - pr: 1\n    note: one\n\ntargets: []\n",
		},
		{
			name: "every item dropped",
			in:   "series:   # the patches\n- pr: 1\n- {patch: x.patch}\ntargets: []\n",
			ed:   recipeEdit{Drop: []int{0, 1}},
			want: "series: []   # the patches\ntargets: []\n",
		},
		{
			name: "flow list is left to a person",
			in:   "series: [{pr: 1}, {pr: 2}]\n",
			ed:   recipeEdit{Drop: []int{0}},
			err:  "flow list",
		},
		{
			name: "block scalar is left to a person",
			in:   "upstream:\n  version: |\n    4.1\n",
			ed:   recipeEdit{Version: "4.2"},
			err:  "block scalar",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := editRecipe([]byte(tt.in), tt.ed)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Errorf("error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

// TestWriteRefusesStaleAlternatives: a Debian alternative still naming the
// old release would build it under the new version: Write refuses until a
// person sets it, then carries the recipe.
func TestWriteRefusesStaleAlternatives(t *testing.T) {
	e := newEnv(t)
	e.recipe("v4.1.1", "patch: 0001-notes.patch")
	withDebian := func(version string) {
		data, err := os.ReadFile(e.recipePath())
		if err != nil {
			t.Fatal(err)
		}
		// The archive does not answer (port 1): sync keeps it unresolved.
		alt := "    - debian-source: {package: criu, version: \"" + version + "\", suite: sid, mirror: \"http://127.0.0.1:1/debian\"}\n"
		text := strings.Replace(string(data), "\nseries:", "\n"+alt+"series:", 1)
		if err := os.WriteFile(e.recipePath(), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := series.Sync(context.Background(), e.load(), e.seriesOpts()); err != nil {
			t.Fatal(err)
		}
	}
	withDebian("4.1.1-1")
	e.release("v4.2.1")
	rp := e.watch().Recipes[0]
	if !strings.Contains(strings.Join(rp.Notes, "\n"), "debian-source criu 4.1.1-1: set the version") {
		t.Errorf("plan notes: %q", rp.Notes)
	}
	before, _ := os.ReadFile(e.recipePath())
	_, err := Write(context.Background(), e.load(), rp, e.seriesOpts())
	if err == nil || !strings.Contains(err.Error(), "upstream.sources[1] debian-source criu 4.1.1-1") {
		t.Fatalf("write with a stale Debian alternative: %v", err)
	}
	if after, _ := os.ReadFile(e.recipePath()); string(after) != string(before) {
		t.Error("a refused write changed the recipe")
	}

	// The person points the Debian alternative at 4.2.1; now it carries.
	data := strings.Replace(string(before), `version: "4.1.1-1"`, `version: "4.2.1-1"`, 1)
	if err := os.WriteFile(e.recipePath(), []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := series.Sync(context.Background(), e.load(), e.seriesOpts()); err != nil {
		t.Fatal(err)
	}
	rp = e.watch().Recipes[0]
	res, err := Write(context.Background(), e.load(), rp, e.seriesOpts())
	if err != nil || res.To != "4.2.1" {
		t.Fatalf("write: %+v, %v", res, err)
	}
}
