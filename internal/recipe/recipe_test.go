package recipe

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/criu-forge/criu-forge/internal/testutil"
)

const good = `name: demo
upstream:
  version: 4.2.1
  github: checkpoint-restore/criu
  sources:
    - git: {url: https://github.com/checkpoint-restore/criu.git, ref: v4.2.1}
series:
  - pr: 101
  - patch: 0001-local.patch
build:
  deps: {deb: [gcc]}
targets:
  - {distro: debian, release: "12"}
`

// writeRecipe lays out recipes/NAME.yaml and patches/demo/0001-local.patch.
func writeRecipe(t *testing.T, body string) string {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"recipes", "patches/demo"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "patches/demo/0001-local.patch"), []byte("diff --git a/x b/x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(root, "recipes", "demo.yaml")
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadGood(t *testing.T) {
	r, warns, err := Load(writeRecipe(t, good))
	if err != nil {
		t.Fatal(err)
	}
	if len(warns) != 0 {
		t.Errorf("unexpected warnings: %v", warns)
	}
	tgt := r.Targets[0]
	if tgt.ID() != "debian-12" || tgt.Arch != "amd64" || tgt.Family() != "deb" || tgt.Codename() != "bookworm" || tgt.Formats[0] != "deb" {
		t.Errorf("target defaults: %+v id %s", tgt, tgt.ID())
	}
	if r.Package.Name != "criu" || r.Package.Mode != "replace" || r.Package.Revision != 1 {
		t.Errorf("package defaults: %+v", r.Package)
	}
	if got := r.LockPath(); !strings.HasSuffix(got, filepath.Join("patches", "demo", "series.lock")) {
		t.Errorf("lock path %s", got)
	}
	if o, n, ok := r.GitHubRepo(r.Series[0]); !ok || o != "checkpoint-restore" || n != "criu" {
		t.Errorf("github repo %s/%s %v", o, n, ok)
	}
}

// TestErrors covers each class of recipe error: the message must name the
// place (line:column and key path) and what is expected.
func TestErrors(t *testing.T) {
	tests := []struct {
		name, body string
		want       []string
	}{
		{"not yaml", "name: [demo\n", []string{"demo.yaml:", "not valid YAML"}},
		{"empty", "", []string{"empty recipe"}},
		{"unknown key", strings.Replace(good, "series:", "seires:", 1),
			[]string{"demo.yaml:7:1: seires: unknown key \"seires\"; expected one of:", "series", "upstream"}},
		{"unknown nested key", strings.Replace(good, "ref: v4.2.1", "ref: v4.2.1, branch: x", 1),
			[]string{"demo.yaml:6:", "upstream.sources[0].git.branch: unknown key \"branch\"; expected one of: commit, ref, url"}},
		{"wrong type", strings.Replace(good, "pr: 101", "pr: abc", 1),
			[]string{"demo.yaml:8:9: series[0].pr: wrong type: got string, expected integer"}},
		{"missing field", strings.Replace(good, "  version: 4.2.1\n", "", 1),
			[]string{"demo.yaml:3:3: upstream: missing required key \"version\""}},
		{"missing targets", strings.Replace(good, "targets:\n  - {distro: debian, release: \"12\"}\n", "", 1),
			[]string{"demo.yaml:1:1: missing required key \"targets\""}},
		{"unknown distro", strings.Replace(good, "distro: debian", "distro: arch", 1),
			[]string{"demo.yaml:13:14: targets[0].distro: arch is not allowed here; expected one of: debian, ubuntu, rocky, rhel, almalinux, fedora"}},
		{"unknown release", strings.Replace(good, `release: "12"`, `release: "10"`, 1),
			[]string{"demo.yaml:13:31: targets[0].release: unknown debian release \"10\"; known: 11, 12, 13, 14, sid"}},
		{"bad ref", strings.Replace(good, "- pr: 101", "- commit: xyz", 1),
			[]string{"demo.yaml:8:13: series[0].commit: \"xyz\" is not well formed"}},
		{"bad sha256", strings.Replace(good, "- git: {url: https://github.com/checkpoint-restore/criu.git, ref: v4.2.1}", "- tarball: {url: x.tar.xz, sha256: abc}", 1),
			[]string{"upstream.sources[0].tarball.sha256: \"abc\" is not well formed"}},
		{"two kinds in one source", strings.Replace(good, "- git: {url: https://github.com/checkpoint-restore/criu.git, ref: v4.2.1}", "- git: {url: u, ref: r}\n      tarball: {url: x, sha256: "+strings.Repeat("a", 64)+"}", 1),
			[]string{"upstream.sources[0]: needs exactly one of: debian-source, git, tarball"}},
		{"two kinds in one entry", strings.Replace(good, "- pr: 101", "- {pr: 101, commit: abcdef1}", 1),
			[]string{"demo.yaml:8:5: series[0]: a series entry takes only one of: pr, commit, range, patch"}},
		{"empty entry", strings.Replace(good, "- pr: 101", "- note: nothing", 1),
			[]string{"series[0]: a series entry needs one of: pr, commit, range, patch"}},
		{"missing patch file", strings.Replace(good, "0001-local.patch", "0002-missing.patch", 1),
			[]string{"demo.yaml:9:12: series[1].patch: patch file", "not found"}},
		{"patch escapes", strings.Replace(good, "0001-local.patch", "../../etc/passwd", 1),
			[]string{"series[1].patch: patch \"../../etc/passwd\" must be a file inside", "escapes"}},
		{"wrong format for family", strings.Replace(good, `release: "12"`, `release: "12", formats: [rpm]`, 1),
			[]string{"targets[0].formats[0]: debian packages deb, not rpm"}},
		{"duplicate target", strings.Replace(good, `  - {distro: debian, release: "12"}`, "  - {distro: debian, release: \"12\"}\n  - {distro: debian, release: \"12\", arch: x86_64}", 1),
			[]string{"targets[1]: target debian-12 is listed twice"}},
		{"distinct named criu", good + "package: {mode: distinct}\n",
			[]string{"package.mode: mode distinct needs a package name other than criu"}},
		{"pr without github", strings.Replace(strings.Replace(good, "  github: checkpoint-restore/criu\n", "", 1), "https://github.com/checkpoint-restore/criu.git", "https://git.example.org/criu.git", 1),
			[]string{"series[0].pr: pull requests need a GitHub repository"}},
		{"symmetric range", strings.Replace(good, "- pr: 101", "- range: v4.1.1...v4.2.1", 1),
			[]string{"series[0].range: range \"v4.1.1...v4.2.1\" must be FROM..TO"}},
		{"duplicate key", good + "name: again\n", []string{"key \"name\" appears twice"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Load(writeRecipe(t, tt.body))
			if err == nil {
				t.Fatal("Load accepted a broken recipe")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q:\n%s", w, err)
				}
			}
		})
	}
}

func TestWarnings(t *testing.T) {
	body := strings.Replace(good, "- pr: 101", "- {pr: 101, until: \"4.1\"}", 1)
	_, warns, err := Load(writeRecipe(t, body))
	if err != nil {
		t.Fatal(err)
	}
	if len(warns) != 1 || !strings.Contains(warns[0].String(), "series[0].until: upstream 4.2.1 already contains this change") {
		t.Errorf("warnings: %v", warns)
	}
}

func TestShippedRecipes(t *testing.T) {
	paths, _ := filepath.Glob(filepath.Join(testutil.RepoRoot(t), "recipes", "*.yaml"))
	if len(paths) < 3 {
		t.Fatalf("expected the three shipped recipes, found %v", paths)
	}
	for _, p := range paths {
		if _, warns, err := Load(p); err != nil || len(warns) > 0 {
			t.Errorf("%s: %v %v", p, err, warns)
		}
	}
}

func TestCompareVersions(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{{"4.1", "4.1.0", 0}, {"v4.2.1", "4.1", 1}, {"3.19", "4.1", -1}, {"3.19", "3.9", 1}} {
		if got := CompareVersions(c.a, c.b); got != c.want {
			t.Errorf("CompareVersions(%s, %s) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}

// FuzzParse: a recipe is untrusted input; Parse must never panic, and a
// recipe it accepts must have the invariants the stages rely on.
func FuzzParse(f *testing.F) {
	f.Add([]byte(good))
	paths, _ := filepath.Glob("../../recipes/*.yaml")
	for _, p := range paths {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, _, err := Parse(filepath.Join(t.TempDir(), "recipes", "fuzz.yaml"), data)
		if err != nil {
			return
		}
		if r.Name == "" || len(r.Targets) == 0 || len(r.Upstream.Sources) == 0 {
			t.Fatalf("accepted recipe lacks required parts: %+v", r)
		}
		for _, e := range r.Series {
			if e.Kind() == "" {
				t.Fatalf("accepted an entry with no kind: %+v", e)
			}
		}
	})
}
