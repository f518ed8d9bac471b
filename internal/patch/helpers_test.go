package patch

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"

	"github.com/criu-forge/criu-forge/internal/testutil/upstream"
)

// fixture opens a private copy of the fixture upstream.
func fixture(t testing.TB) (*upstream.Fixture, *git.Repository) {
	t.Helper()
	f := upstream.New(t)
	repo, err := git.PlainOpen(f.Dir)
	if err != nil {
		t.Fatal(err)
	}
	return f, repo
}

// gitCmd runs the git CLI with no user configuration and returns stdout.
func gitCmd(t testing.TB, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=Test", "GIT_AUTHOR_EMAIL=test@example.org",
		"GIT_COMMITTER_NAME=Test", "GIT_COMMITTER_EMAIL=test@example.org")
	out, err := cmd.Output()
	if err != nil {
		stderr := ""
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	return string(out)
}

// commitPatches turns commits into patches with FromCommit.
func commitPatches(t testing.TB, repo *git.Repository, commits []string) []*Patch {
	t.Helper()
	var ps []*Patch
	for _, c := range commits {
		p, err := FromCommit(repo, plumbing.NewHash(c))
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	return ps
}

// blobAt returns the blob id of path in commit.
func blobAt(t testing.TB, repo *git.Repository, commit plumbing.Hash, path string) plumbing.Hash {
	t.Helper()
	c, err := repo.CommitObject(commit)
	if err != nil {
		t.Fatal(err)
	}
	f, err := c.File(path)
	if err != nil {
		t.Fatalf("%s in %s: %v", path, commit, err)
	}
	return f.Hash
}

func itoa(n int) string { return strconv.Itoa(n) }
