package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/criu-forge/criu-forge/internal/testutil"
	"github.com/criu-forge/criu-forge/internal/testutil/fakegithub"
	"github.com/criu-forge/criu-forge/internal/testutil/upstream"
)

// cli runs one command line in-process and returns its exit code and output.
func cli(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestEveryVerbHasHelpWithExample(t *testing.T) {
	root := newRoot(&bytes.Buffer{}, &bytes.Buffer{})
	for _, c := range root.Commands() {
		switch c.Name() {
		case "help", "completion", "version":
			continue
		}
		if c.Example == "" {
			t.Errorf("criu-forge %s --help has no example", c.Name())
		}
		code, out, _ := cli(t, c.Name(), "--help")
		if code != 0 || !strings.Contains(out, "Examples:") {
			t.Errorf("%s --help: exit %d\n%s", c.Name(), code, out)
		}
	}
}

func TestExitCodes(t *testing.T) {
	root := testutil.RepoRoot(t)
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"bogus"}, 2, "unknown command"},
		{[]string{"prepare"}, 2, "expects one recipe file"},
		{[]string{"prepare", "x.yaml"}, 2, "--out DIR is required"},
		{[]string{"lint"}, 2, "one or more recipe files"},
		{[]string{"lint", filepath.Join(root, "recipes", "criu-pidfd.yaml")}, 0, ""},
		{[]string{"lint", filepath.Join(root, "README.md")}, 1, "README.md:"},
		{[]string{"version"}, 0, ""},
	}
	for _, tt := range tests {
		code, _, stderr := cli(t, tt.args...)
		if code != tt.code || !strings.Contains(stderr, tt.want) {
			t.Errorf("%v: exit %d (want %d), stderr:\n%s", tt.args, code, tt.code, stderr)
		}
	}
}

func TestLintShippedRecipes(t *testing.T) {
	paths, _ := filepath.Glob(filepath.Join(testutil.RepoRoot(t), "recipes", "*.yaml"))
	code, out, stderr := cli(t, append([]string{"lint"}, paths...)...)
	if code != 0 || strings.Count(out, "ok: ") != len(paths) || stderr != "" {
		t.Errorf("lint of shipped recipes: exit %d\n%s\n%s", code, out, stderr)
	}
	if !strings.Contains(out, "criu-pidfd, 0 series entries, 4 targets; lock current") {
		t.Errorf("criu-pidfd's committed lock should be current:\n%s", out)
	}
}

// TestSyncPrepareOverHTTP drives the verbs as a user would: the fixture
// upstream served by git's http-backend, the fake GitHub API.
func TestSyncPrepareOverHTTP(t *testing.T) {
	fx := upstream.New(t)
	url := fx.Serve(t)
	gh := fakegithub.New(t)
	pr := fx.PRs[101]
	var commits []fakegithub.Commit
	for _, c := range pr.Commits {
		commits = append(commits, fakegithub.Commit{SHA: c})
	}
	gh.AddPR("checkpoint-restore", "criu", fakegithub.PR{Number: 101, Title: pr.Title, State: "open", HeadSHA: pr.Head, Commits: commits})

	dir := t.TempDir()
	recipePath := filepath.Join(dir, "recipes", "fx.yaml")
	if err := os.MkdirAll(filepath.Dir(recipePath), 0o755); err != nil {
		t.Fatal(err)
	}
	body := "name: fx\nupstream:\n  version: 4.1.1\n  github: checkpoint-restore/criu\n  sources:\n    - git: {url: \"" + url + "\", ref: v4.1.1, commit: " + fx.Commits["v4.1.1"][:10] + "}\nseries:\n  - pr: 101\nbuild: {deps: {deb: [gcc]}}\ntargets:\n  - {distro: debian, release: \"12\"}\n"
	if err := os.WriteFile(recipePath, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	cache := filepath.Join(dir, "cache")
	t.Setenv("GITHUB_TOKEN", "ghp_secret_never_printed")

	code, out, stderr := cli(t, "--cache-dir", cache, "--github-api", gh.URL(), "sync", recipePath)
	if code != 0 {
		t.Fatalf("sync: exit %d\n%s\n%s", code, out, stderr)
	}
	if !strings.Contains(out, "PR #101 [open]: 2 patch(es)") || !strings.Contains(out, "lock written") {
		t.Errorf("sync output:\n%s", out)
	}
	if strings.Contains(out+stderr, "ghp_secret") {
		t.Error("the token was printed")
	}

	tree := filepath.Join(dir, "tree")
	code, out, stderr = cli(t, "--cache-dir", cache, "--offline", "prepare", recipePath, "--out", tree)
	if code != 0 {
		t.Fatalf("prepare: exit %d\n%s\n%s", code, out, stderr)
	}
	log, err := exec.Command("git", "-C", tree, "log", "--format=%s").Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Split(strings.TrimSpace(string(log)), "\n"); len(got) != 3 {
		t.Errorf("want the base and one commit per patch, got:\n%s", log)
	}
}

func TestPublishGitHubRelease(t *testing.T) {
	gh := fakegithub.New(t)
	dir := t.TempDir()
	deb := filepath.Join(dir, "criu_4.2.1+forge3-1~deb12_amd64.deb")
	if err := os.WriteFile(deb, []byte("not really a deb, the release does not care"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GITHUB_TOKEN", "ghp_secret_never_printed")
	args := []string{"--cache-dir", filepath.Join(dir, "cache"), "--github-api", gh.URL(), "publish", "--github-release", "criu-4.2.1-forge3", "--github-repo", "platform/criu", deb}
	for i, want := range []string{"created: 2 uploaded, 0 already there", "updated: 0 uploaded, 2 already there"} {
		code, out, stderr := cli(t, args...)
		if code != 0 || !strings.Contains(out, want) || strings.Contains(out+stderr, "ghp_secret") {
			t.Errorf("run %d: exit %d\n%s\n%s", i+1, code, out, stderr)
		}
	}
	if code, _, stderr := cli(t, "publish", deb); code != 2 || !strings.Contains(stderr, "--repo DIR, --github-release TAG") {
		t.Errorf("publish without a destination: exit %d: %s", code, stderr)
	}
}

// TestPrepareShippedRecipeWithoutGitHub is the main job's first half where
// GitHub does not answer: the committed lock of recipes/criu-pidfd.yaml
// pins the 4.2.1 release through Debian's signed archive, and prepare gives
// the real release tree (the fixture tarball's, whose sha256 the lock pins).
func TestPrepareShippedRecipeWithoutGitHub(t *testing.T) {
	testutil.RequireHeavy(t)
	testutil.RequireTool(t, "apt-get", "apt")
	tarball := testutil.CRIUTarball(t, "4.2.1")
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	code, out, stderr := cli(t, "--cache-dir", filepath.Join(dir, "cache"), "prepare", filepath.Join(testutil.RepoRoot(t), "recipes", "criu-pidfd.yaml"), "--out", tree)
	if code != 0 {
		t.Fatalf("prepare: exit %d\n%s\n%s", code, out, stderr)
	}
	if !strings.Contains(out, "debian-source criu 4.2.1-1 sid sha256:29ec0ee09e296479fe7048c80980e8ef1d0684d0b0204c2b101dfea19f6725b9") {
		t.Errorf("prepare did not use the pinned Debian source:\n%s", out)
	}
	want := filepath.Join(dir, "release")
	if err := os.MkdirAll(want, 0o755); err != nil {
		t.Fatal(err)
	}
	testutil.Run(t, want, "tar", "-xJf", tarball, "--strip-components=1")
	diff, err := exec.Command("diff", "-r", "--no-dereference", "-x", ".git", want, tree).CombinedOutput()
	if err != nil {
		t.Errorf("the prepared tree differs from the 4.2.1 release:\n%.2000s", diff)
	}
}
