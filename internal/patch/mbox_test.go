package patch

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
)

func TestParseMbox(t *testing.T) {
	f, repo := fixture(t)
	pr := f.PRs[101]
	// GitHub's .patch of a pull request: every commit's format-patch mail,
	// one after the other.
	series := gitCmd(t, f.Dir, "format-patch", "--stdout", pr.Base+".."+pr.Head)
	tests := []struct {
		name     string
		data     string
		subjects []string
		authored bool
	}{
		{name: "pull request mbox", data: series, authored: true,
			subjects: []string{"files: remove BUG_ON for TASK_HELPER in prepare_fds", "Documentation: compel_prepare takes handle_rseq"}},
		{name: "cover text before the first message", data: "Notes from the sender\n\n" + series, authored: true,
			subjects: []string{"files: remove BUG_ON for TASK_HELPER in prepare_fds", "Documentation: compel_prepare takes handle_rseq"}},
		{name: "plain diff", data: gitCmd(t, f.Dir, "diff", pr.Base, pr.Head, "--", "criu/files.c"), subjects: []string{""}},
		{name: "mail without From line", data: "From: A U Thor <a@example.org>\nDate: Tue, 10 Feb 2026 10:00:00 +0000\nSubject: [PATCH] fix it\n\nbody\n---\n" +
			gitCmd(t, f.Dir, "diff", pr.Base, pr.Head, "--", "criu/files.c"), subjects: []string{"fix it"}, authored: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps, err := ParseMbox([]byte(tt.data))
			if err != nil {
				t.Fatal(err)
			}
			if len(ps) != len(tt.subjects) {
				t.Fatalf("%d patches, want %d", len(ps), len(tt.subjects))
			}
			for i, p := range ps {
				if p.Name != tt.subjects[i] {
					t.Errorf("patch %d name %q, want %q", i, p.Name, tt.subjects[i])
				}
				if tt.authored && (p.Author.Name == "" || p.Author.When.IsZero() || !strings.HasPrefix(p.Message, p.Name)) {
					t.Errorf("patch %d: author %v, message %q", i, p.Author, p.Message)
				}
				if !strings.HasPrefix(string(p.Diff), "diff --git ") {
					t.Errorf("patch %d diff starts with %.40q", i, p.Diff)
				}
			}
		})
	}

	// The mbox's patches are the PR's commits: same hashes, same trees.
	ps, err := ParseMbox([]byte(series))
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range pr.Commits {
		fc := commitPatches(t, repo, []string{c})[0]
		h1, _ := Hash(fc.Diff)
		h2, _ := Hash(ps[i].Diff)
		if h1 != h2 {
			t.Errorf("commit %d: FromCommit hash %s, mbox hash %s", i, h1, h2)
		}
		if ps[i].Origin != "commit "+c {
			t.Errorf("origin %q", ps[i].Origin)
		}
		if !strings.Contains(ps[i].Message, "Signed-off-by: Pat Contributor") || strings.Contains(ps[i].Message, "files changed") {
			t.Errorf("message keeps the trailer and drops the diffstat: %q", ps[i].Message)
		}
	}
	base := plumbing.NewHash(pr.Base)
	viaMbox, _, err := Apply(context.Background(), repo, base, ps, Options{Committer: testCommitter})
	if err != nil {
		t.Fatal(err)
	}
	viaCommits, _, err := Apply(context.Background(), repo, base, commitPatches(t, repo, pr.Commits), Options{Committer: testCommitter})
	if err != nil {
		t.Fatal(err)
	}
	if viaMbox != viaCommits {
		t.Errorf("same patches from mbox and from commits give different commits: %s vs %s", viaMbox, viaCommits)
	}
}

func TestParseMboxRejects(t *testing.T) {
	for name, data := range map[string]string{
		"broken hunk":     "diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1,3 +1,3 @@\n-a\n+b\n",
		"bad date header": "From 1234567890abcdef1234567890abcdef12345678 Mon Sep 17 00:00:00 2001\nFrom: A <a@x>\nDate: not a date\nSubject: x\n\n---\ndiff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n",
	} {
		if _, err := ParseMbox([]byte(data)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// memPatch makes a patch from a plain diff.
func memPatch(name, diff string) *Patch {
	return &Patch{Name: name, Origin: "test " + name, Diff: []byte(diff),
		Author: Signature{Name: "T", Email: "t@example.org", When: time.Unix(1700000000, 0).UTC()}}
}

// TestApplyHunks covers hunk placement on the fixture's Makefile.versions:
// offsets (as git am), fuzz, and the conflict report.
func TestApplyHunks(t *testing.T) {
	f, repo := fixture(t)
	base := plumbing.NewHash(f.Commits["v4.2.1"])
	lines := strings.SplitAfter(gitCmd(t, f.Dir, "show", "v4.2.1:Makefile.versions"), "\n")
	ctx := func(from, to int) string { // lines from..to (1-based), as context
		var b strings.Builder
		for _, l := range lines[from-1 : to] {
			b.WriteString(" " + l)
		}
		return b.String()
	}
	header := "diff --git a/Makefile.versions b/Makefile.versions\n--- a/Makefile.versions\n+++ b/Makefile.versions\n"
	// Replace line 5 keeping three lines of context; the header may lie
	// about where.
	edit := func(at int, before, after string) string {
		return header + "@@ -" + itoa(at) + ",7 +" + itoa(at) + ",7 @@\n" + ctx(2, 4) + "-" + before + "+" + after + ctx(6, 8)
	}
	line5 := lines[4]
	tests := []struct {
		name     string
		diff     string
		fuzz     int
		conflict string
	}{
		{name: "exact", diff: edit(2, line5, "# edited\n")},
		{name: "header off by 20 lines", diff: edit(22, line5, "# edited\n")},
		{name: "wrong removed line", diff: edit(2, "CRIU_VERSION_MINOR\t:= 9\n", "# edited\n"), conflict: "line 5 is"},
		{name: "wrong context without fuzz", diff: header + "@@ -2,7 +2,7 @@\n" + " # changed context\n" + ctx(3, 4) + "-" + line5 + "+# edited\n" + ctx(6, 8), conflict: "@@ -2,7 +2,7 @@"},
		{name: "wrong context with fuzz 1", diff: header + "@@ -2,7 +2,7 @@\n" + " # changed context\n" + ctx(3, 4) + "-" + line5 + "+# edited\n" + ctx(6, 8), fuzz: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			head, _, err := Apply(context.Background(), repo, base, []*Patch{memPatch(tt.name, tt.diff)}, Options{Fuzz: tt.fuzz})
			if tt.conflict != "" {
				var ce *ConflictError
				if !errors.As(err, &ce) || !strings.Contains(err.Error(), tt.conflict) || ce.File != "Makefile.versions" {
					t.Fatalf("want a conflict saying %q, got %v", tt.conflict, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			c, _ := repo.CommitObject(head)
			file, err := c.File("Makefile.versions")
			if err != nil {
				t.Fatal(err)
			}
			got, _ := file.Contents()
			want := strings.Replace(strings.Join(lines, ""), line5, "# edited\n", 1)
			if got != want {
				t.Errorf("result:\n%s", got)
			}
		})
	}
}

// TestApplyPartlyContained: a patch whose first file the tree already has
// and whose second does not apply is a conflict naming both.
func TestApplyPartlyContained(t *testing.T) {
	f, repo := fixture(t)
	contained := gitCmd(t, f.Dir, "diff", f.Commits["v4.1.1"], f.Commits["v4.2.1"], "--", "criu/files.c")
	conflicting := gitCmd(t, f.Dir, "diff", f.PRs[103].Base, f.PRs[103].Head)
	p := memPatch("mixed", contained+conflicting)
	_, _, err := Apply(context.Background(), repo, plumbing.NewHash(f.Commits["v4.2.1"]), []*Patch{p}, Options{})
	var ce *ConflictError
	if !errors.As(err, &ce) || ce.File != "Makefile.versions" || !strings.Contains(err.Error(), "already in the tree: criu/files.c") {
		t.Fatalf("want a conflict in Makefile.versions that names criu/files.c as contained, got %v", err)
	}
	// An empty patch is contained.
	_, out, err := Apply(context.Background(), repo, plumbing.NewHash(f.Commits["v4.2.1"]), []*Patch{memPatch("empty", "")}, Options{})
	if err != nil || out[0].Status != Contained {
		t.Errorf("empty patch: %v %v", out, err)
	}
}

func TestApplyRefusesAPathChangedTwice(t *testing.T) {
	f, repo := fixture(t)
	one := gitCmd(t, f.Dir, "diff", f.PRs[103].Base, f.PRs[103].Head)
	_, _, err := Apply(context.Background(), repo, plumbing.NewHash(f.PRs[103].Base), []*Patch{memPatch("twice", one+one)}, Options{})
	var ce *ConflictError
	if !errors.As(err, &ce) || ce.File != "Makefile.versions" || !strings.Contains(err.Error(), "more than once") {
		t.Errorf("got %v", err)
	}
}
