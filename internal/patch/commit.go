package patch

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// FromCommit returns the change a commit makes against its first parent
// (against the empty tree for a root commit), with its author and message;
// Origin is "commit <id>". A merge commit is refused: list its commits
// instead.
//
// The diff is made by the git CLI (`git diff-tree -p --binary --full-index
// -M`) on the repository's own directory, because Hash must equal the hash
// of the same commit as `git format-patch` or GitHub's .patch produce it,
// and only git's own diff (Myers with the indent heuristic) draws the hunks
// the same way; go-git's diff places them differently. So the repository
// must be on disk and git must be installed.
func FromCommit(repo *git.Repository, commit plumbing.Hash) (*Patch, error) {
	c, err := repo.CommitObject(commit)
	if err != nil {
		return nil, fmt.Errorf("read commit %s: %w", commit, err)
	}
	if len(c.ParentHashes) > 1 {
		return nil, fmt.Errorf("commit %s is a merge commit: list the commits it merges instead", commit)
	}
	gitDir, err := repoDir(repo)
	if err != nil {
		return nil, fmt.Errorf("diff commit %s: %w", commit, err)
	}
	args := []string{"--git-dir", gitDir, "diff-tree", "-p", "--binary", "--full-index", "-M",
		"--no-color", "--no-ext-diff", "--no-textconv", "--no-commit-id"}
	if len(c.ParentHashes) == 0 {
		args = append(args, "--root", commit.String())
	} else {
		args = append(args, c.ParentHashes[0].String(), commit.String())
	}
	cmd := exec.Command("git", args...)
	// The user's configuration must not change the diff (and so the hash).
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "LC_ALL=C")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	diff, err := cmd.Output()
	if err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return nil, fmt.Errorf("diff commit %s: git not found on PATH: install git", commit)
		}
		return nil, fmt.Errorf("diff commit %s: git diff-tree: %v: %s", commit, err, strings.TrimSpace(stderr.String()))
	}
	if _, err := parseDiff(diff); err != nil {
		return nil, fmt.Errorf("diff commit %s: %w", commit, err)
	}
	subject, _, _ := strings.Cut(c.Message, "\n")
	return &Patch{
		Name:    strings.TrimSpace(subject),
		Origin:  "commit " + commit.String(),
		Author:  c.Author,
		Message: c.Message,
		Diff:    diff,
	}, nil
}

// repoDir is the directory git can open for repo.
func repoDir(repo *git.Repository) (string, error) {
	fs, ok := repo.Storer.(*filesystem.Storage)
	if !ok {
		return "", errors.New("the repository is not on disk (git's diff needs its directory)")
	}
	return fs.Filesystem().Root(), nil
}
