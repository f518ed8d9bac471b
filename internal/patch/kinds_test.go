package patch

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"

	"github.com/criu-forge/criu-forge/internal/testutil"
)

// kindsRepo builds, with the git CLI, a repository whose commits each make
// one kind of change git diffs can carry, and returns it with its commits
// (oldest first, after the initial one) and their subjects.
func kindsRepo(t *testing.T) (string, []string) {
	t.Helper()
	testutil.RequireTool(t, "git", "git")
	dir := filepath.Join(t.TempDir(), "kinds")
	gitCmd(t, "", "init", "-q", "-b", "main", dir)
	write := func(name, content string, mode os.FileMode) {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	commit := func(msg string) {
		gitCmd(t, dir, "add", "-A")
		gitCmd(t, dir, "commit", "-q", "-m", msg)
	}
	long := strings.Repeat("a line that makes the file long enough to be a rename\n", 20)
	write("src/main.c", "int main(void)\n{\n\treturn 0;\n}\n", 0o644)
	write("scripts/run.sh", "#!/bin/sh\necho run\n", 0o644)
	write("doc/old-name.txt", long, 0o644)
	write("gone/only.txt", "deleted later\n", 0o644)
	write("blob.bin", "\x00\x01\x02binary\x00data\n", 0o644)
	write("noeol.txt", "no newline at the end", 0o644)
	commit("initial")

	var subjects []string
	step := func(msg string, change func()) {
		change()
		commit(msg)
		subjects = append(subjects, msg)
	}
	step("modify a file", func() { write("src/main.c", "int main(void)\n{\n\treturn 1;\n}\n", 0o644) })
	step("make a script executable", func() { write("scripts/run.sh", "#!/bin/sh\necho run\n", 0o755) })
	step("add files in new directories", func() {
		write("new/deep/dir/file.h", "#define X 1\n", 0o644)
		write("new/empty", "", 0o644)
	})
	step("delete a file and its directory", func() { os.RemoveAll(filepath.Join(dir, "gone")) })
	step("rename a file with an edit", func() {
		os.Remove(filepath.Join(dir, "doc/old-name.txt"))
		write("doc/new-name.txt", long+"one more line\n", 0o644)
	})
	step("add a symbolic link", func() {
		if err := os.Symlink("../src/main.c", filepath.Join(dir, "doc/main-link")); err != nil {
			t.Fatal(err)
		}
	})
	step("retarget the symbolic link", func() {
		os.Remove(filepath.Join(dir, "doc/main-link"))
		if err := os.Symlink("../scripts/run.sh", filepath.Join(dir, "doc/main-link")); err != nil {
			t.Fatal(err)
		}
	})
	step("change a binary file", func() { write("blob.bin", "\x00\x01\x02binary\x00data changed\xff\n", 0o644) })
	step("add a binary file", func() { write("img/new.bin", "\x89PNG\x00\x00\x10\x20", 0o644) })
	step("edit the line without a newline", func() { write("noeol.txt", "still no newline, edited", 0o644) })
	step("add the missing newline", func() { write("noeol.txt", "still no newline, edited\n", 0o644) })
	step("delete a binary file", func() { os.Remove(filepath.Join(dir, "blob.bin")) })
	step("copy a file with an edit", func() { write("doc/copy.txt", long+"copied\n", 0o644) })
	commits := strings.Fields(gitCmd(t, dir, "rev-list", "--reverse", "HEAD~"+strconv.Itoa(len(subjects))+"..HEAD"))
	if len(commits) != len(subjects) {
		t.Fatalf("%d commits for %d steps", len(commits), len(subjects))
	}
	return dir, commits
}

// TestApplyEveryKindOfChange applies each commit, as FromCommit and as
// `git format-patch` output, onto its parent and expects exactly the
// commit's tree; then reverts to the parent to see it reported contained.
func TestApplyEveryKindOfChange(t *testing.T) {
	dir, commits := kindsRepo(t)
	repo, err := git.PlainOpen(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range commits {
		subject := strings.TrimSpace(gitCmd(t, dir, "log", "-1", "--format=%s", c))
		t.Run(subject, func(t *testing.T) {
			fromCommit, err := FromCommit(repo, plumbing.NewHash(c))
			if err != nil {
				t.Fatal(err)
			}
			mbox, err := ParseMbox([]byte(gitCmd(t, dir, "format-patch", "--stdout", "--binary", "-1", c)))
			if err != nil || len(mbox) != 1 {
				t.Fatalf("ParseMbox: %d patches, %v", len(mbox), err)
			}
			copies, err := ParseMbox([]byte(gitCmd(t, dir, "format-patch", "--stdout", "--binary", "-C", "-C", "-1", c)))
			if err != nil || len(copies) != 1 {
				t.Fatalf("ParseMbox: %d patches, %v", len(copies), err)
			}
			parent := plumbing.NewHash(strings.TrimSpace(gitCmd(t, dir, "rev-parse", c+"^")))
			wantTree := strings.TrimSpace(gitCmd(t, dir, "rev-parse", c+"^{tree}"))
			for name, p := range map[string]*Patch{"FromCommit": fromCommit, "format-patch": mbox[0], "format-patch -C -C": copies[0]} {
				head, outcomes, err := Apply(context.Background(), repo, parent, []*Patch{p}, Options{Committer: testCommitter})
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if outcomes[0].Status != Applied {
					t.Fatalf("%s: status %v", name, outcomes[0].Status)
				}
				hc, err := repo.CommitObject(head)
				if err != nil {
					t.Fatal(err)
				}
				if hc.TreeHash.String() != wantTree {
					t.Errorf("%s: tree %s, the commit has %s", name, hc.TreeHash, wantTree)
				}
				if hc.Author.Email != "test@example.org" || hc.Author.When.Unix() != p.Author.When.Unix() {
					t.Errorf("%s: author %v, patch says %v", name, hc.Author, p.Author)
				}
				// On the commit itself the change is already there.
				_, outcomes, err = Apply(context.Background(), repo, plumbing.NewHash(c), []*Patch{p}, Options{})
				if err != nil {
					t.Fatalf("%s on its own commit: %v", name, err)
				}
				if outcomes[0].Status != Contained {
					t.Errorf("%s on its own commit: status %v, want contained", name, outcomes[0].Status)
				}
			}
		})
	}
}

// TestCheckoutEveryKindOfChange checks out a series with modes, links,
// binaries, renames and deletions and asks git whether the result is clean.
func TestCheckoutEveryKindOfChange(t *testing.T) {
	dir, commits := kindsRepo(t)
	repo, err := git.PlainOpen(dir)
	if err != nil {
		t.Fatal(err)
	}
	patches := commitPatches(t, repo, commits)
	base := plumbing.NewHash(strings.TrimSpace(gitCmd(t, dir, "rev-parse", commits[0]+"^")))
	head, _, err := Apply(context.Background(), repo, base, patches, Options{Committer: testCommitter})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	if err := Checkout(context.Background(), repo, head, out); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.TrimSpace(gitCmd(t, out, "rev-parse", "HEAD^{tree}")), strings.TrimSpace(gitCmd(t, dir, "rev-parse", "HEAD^{tree}")); got != want {
		t.Errorf("checked-out tree %s, want %s", got, want)
	}
	if got := gitCmd(t, out, "status", "--porcelain"); got != "" {
		t.Errorf("git status --porcelain:\n%s", got)
	}
	gitCmd(t, out, "fsck", "--strict", "--no-dangling")
	if target, err := os.Readlink(filepath.Join(out, "doc/main-link")); err != nil || target != "../scripts/run.sh" {
		t.Errorf("doc/main-link -> %q (%v)", target, err)
	}
	if fi, err := os.Stat(filepath.Join(out, "scripts/run.sh")); err != nil || fi.Mode().Perm()&0o100 == 0 {
		t.Errorf("scripts/run.sh is not executable: %v %v", fi, err)
	}
	// A second checkout replaces the first; a foreign directory is refused.
	if err := Checkout(context.Background(), repo, head, out); err != nil {
		t.Errorf("second checkout into the same place: %v", err)
	}
	foreign := t.TempDir()
	if err := os.WriteFile(filepath.Join(foreign, "mine.txt"), []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Checkout(context.Background(), repo, head, foreign); err == nil || !strings.Contains(err.Error(), "not an earlier criu-forge output") {
		t.Errorf("checkout over a foreign directory: %v", err)
	}
	if _, err := os.Stat(filepath.Join(foreign, "mine.txt")); err != nil {
		t.Errorf("foreign file lost: %v", err)
	}
}
