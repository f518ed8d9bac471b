package patch

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"

	"github.com/criu-forge/criu-forge/internal/testutil"
)

func TestCheckout(t *testing.T) {
	testutil.RequireTool(t, "git", "git")
	f, repo := fixture(t)
	for _, tt := range []struct {
		pr      int
		base    string
		shallow bool
	}{
		{pr: 101, base: "v4.1.1", shallow: false}, // the fixture's first commit
		{pr: 102, base: "v4.2.1", shallow: true},  // v4.1.1 must be left out
	} {
		t.Run(tt.base, func(t *testing.T) {
			pr := f.PRs[tt.pr]
			base := plumbing.NewHash(f.Commits[tt.base])
			checkoutCase(t, f.Dir, repo, pr.Commits, base, tt.shallow)
		})
	}
}

func checkoutCase(t *testing.T, upstreamDir string, repo *git.Repository, commits []string, base plumbing.Hash, shallow bool) {
	patches := commitPatches(t, repo, commits)
	head, _, err := Apply(context.Background(), repo, base, patches, Options{Committer: testCommitter})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	if err := Checkout(context.Background(), repo, head, out); err != nil {
		t.Fatal(err)
	}

	log := strings.Split(strings.TrimSpace(gitCmd(t, out, "log", "--format=%H %s")), "\n")
	if len(log) != len(patches)+1 {
		t.Fatalf("git log shows %d commits, want %d patches plus the base:\n%s", len(log), len(patches), strings.Join(log, "\n"))
	}
	if !strings.HasPrefix(log[len(log)-1], base.String()) {
		t.Errorf("history does not end at the base %s: %s", base, log[len(log)-1])
	}
	if got := strings.TrimSpace(gitCmd(t, out, "rev-parse", "HEAD")); got != head.String() {
		t.Errorf("HEAD is %s, want %s", got, head)
	}
	if got := strings.TrimSpace(gitCmd(t, out, "symbolic-ref", "HEAD")); got != "refs/heads/"+Branch {
		t.Errorf("HEAD points at %s", got)
	}
	if got := gitCmd(t, out, "status", "--porcelain"); got != "" {
		t.Errorf("git status --porcelain is not empty:\n%s", got)
	}
	// The index must be right as written, without a refresh by git.
	if got := gitCmd(t, out, "diff-files", "--name-only"); got != "" {
		t.Errorf("index stat data does not match the files:\n%s", got)
	}
	gitCmd(t, out, "fsck", "--strict", "--no-dangling")
	recorded, err := os.ReadFile(filepath.Join(out, ".git", "shallow"))
	switch {
	case shallow && (err != nil || strings.TrimSpace(string(recorded)) != base.String()):
		t.Errorf(".git/shallow = %q (%v), want the base %s", recorded, err, base)
	case !shallow && err == nil:
		t.Errorf(".git/shallow = %q, but the base has no parents", recorded)
	}
	if shallow {
		if got := strings.TrimSpace(gitCmd(t, out, "rev-parse", "--is-shallow-repository")); got != "true" {
			t.Errorf("git says is-shallow-repository = %s", got)
		}
	}
	for i, c := range commits {
		commit := strings.Fields(log[len(patches)-1-i])[0]
		trailers := gitCmd(t, out, "log", "-1", "--format=%B", commit)
		parsed := interpretTrailers(t, out, trailers)
		want := OriginTrailer + ": commit " + c
		if !strings.Contains(parsed, want) || !strings.Contains(parsed, "Signed-off-by: Pat Contributor") {
			t.Errorf("trailers of %s:\n%s\nwant %q and the Signed-off-by", commit, parsed, want)
		}
	}
	files := strings.Fields(gitCmd(t, out, "ls-files"))
	if want := strings.Fields(gitCmd(t, upstreamDir, "ls-tree", "-r", "--name-only", head.String())); len(files) != len(want) {
		t.Errorf("index has %d files, the tree %d", len(files), len(want))
	}
}

// interpretTrailers runs `git interpret-trailers --parse` on a message.
func interpretTrailers(t *testing.T, dir, message string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "msg")
	if err := os.WriteFile(p, []byte(message), 0o644); err != nil {
		t.Fatal(err)
	}
	return gitCmd(t, dir, "interpret-trailers", "--parse", p)
}

// TestNothingHalfDone: a conflict stores nothing in the repository, and a
// checkout that fails leaves neither the output nor its temporary folder.
func TestNothingHalfDone(t *testing.T) {
	f, repo := fixture(t)
	packs := func() []string {
		m, _ := filepath.Glob(filepath.Join(f.Dir, "objects", "pack", "*"))
		return m
	}
	before := packs()
	patches := commitPatches(t, repo, append(append([]string(nil), f.PRs[102].Commits...), f.PRs[103].Commits...))
	if _, _, err := Apply(context.Background(), repo, plumbing.NewHash(f.Commits["v4.2.1"]), patches, Options{}); err == nil {
		t.Fatal("PR 103 applied on v4.2.1")
	}
	if after := packs(); len(after) != len(before) {
		t.Errorf("a failed Apply wrote into the repository: %v -> %v", before, after)
	}

	head, _, err := Apply(context.Background(), repo, plumbing.NewHash(f.Commits["v4.2.1"]), patches[:2], Options{})
	if err != nil {
		t.Fatal(err)
	}
	parent := t.TempDir()
	out := filepath.Join(parent, "out")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Checkout(ctx, repo, head, out); err == nil {
		t.Fatal("a cancelled checkout succeeded")
	}
	if left, _ := os.ReadDir(parent); len(left) != 0 {
		t.Errorf("a failed checkout left %v in %s", left, parent)
	}
}
