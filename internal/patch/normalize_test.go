package patch

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/criu-forge/criu-forge/internal/testutil"
)

// TestHashStable: the same change, produced by FromCommit and by the
// shapes `git format-patch` and GitHub give it, has one hash.
func TestHashStable(t *testing.T) {
	f, repo := fixture(t)
	for _, c := range f.PRs[101].Commits {
		p, err := FromCommit(repo, plumbing.NewHash(c))
		if err != nil {
			t.Fatal(err)
		}
		want, err := Hash(p.Diff)
		if err != nil {
			t.Fatal(err)
		}
		if !regexp.MustCompile(`^sha256:[0-9a-f]{64}$`).MatchString(want) {
			t.Fatalf("hash %q is not sha256:<hex>", want)
		}
		fp := func(args ...string) []byte {
			return []byte(gitCmd(t, f.Dir, append([]string{"format-patch", "--stdout", "-1", c}, args...)...))
		}
		variants := map[string][]byte{
			"format-patch --abbrev=7":           fp("--abbrev=7"),
			"format-patch --full-index":         fp("--full-index"),
			"format-patch --no-stat":            fp("--no-stat", "--abbrev=12"),
			"format-patch --signature=other":    fp("--signature=criu-forge 0.1", "--stat=60"),
			"format-patch --no-signature":       fp("--no-signature", "--numbered", "--subject-prefix=PATCH v2"),
			"git show":                          []byte(gitCmd(t, f.Dir, "show", "--format=fuller", c)),
			"diff-tree -U3 no header":           []byte(gitCmd(t, f.Dir, "diff-tree", "-p", c)),
			"function names after @@ rewritten": regexp.MustCompile(`(?m)^(@@ [^@]+ @@).*$`).ReplaceAll(fp(), []byte("$1 some_other_function(void)")),
		}
		for name, data := range variants {
			got, err := Hash(data)
			if err != nil {
				t.Errorf("%s: %v", name, err)
				continue
			}
			if got != want {
				n1, _ := Normalize(p.Diff)
				n2, _ := Normalize(data)
				t.Errorf("%s: hash %s, FromCommit gives %s\n--- FromCommit\n%s\n--- %s\n%s", name, got, want, n1, name, n2)
			}
		}
		if p.Name == "" || !strings.HasPrefix(p.Origin, "commit "+c) || p.Author.Name != "Pat Contributor" {
			t.Errorf("patch metadata: name %q origin %q author %v", p.Name, p.Origin, p.Author)
		}
	}

	// File order does not matter: the same two-file change, both ways round.
	order := filepath.Join(t.TempDir(), "order")
	if err := os.WriteFile(order, []byte("criu/files.c\nDocumentation/compel.txt\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	paths := []string{"--", "Documentation/compel.txt", "criu/files.c"}
	plain := gitCmd(t, f.Dir, append([]string{"diff", "v4.1.1", "v4.2.1"}, paths...)...)
	reordered := gitCmd(t, f.Dir, append([]string{"diff", "-O" + order, "v4.1.1", "v4.2.1"}, paths...)...)
	if plain == reordered {
		t.Fatal("git diff -O did not reorder the files; the test proves nothing")
	}
	h1, err1 := Hash([]byte(plain))
	h2, err2 := Hash([]byte(reordered))
	if err1 != nil || err2 != nil || h1 != h2 {
		t.Errorf("reordered files: %s (%v) vs %s (%v)", h1, err1, h2, err2)
	}
	// A different change has a different hash.
	other, err := FromCommit(repo, plumbing.NewHash(f.PRs[102].Commits[0]))
	if err != nil {
		t.Fatal(err)
	}
	if h, _ := Hash(other.Diff); h == h1 {
		t.Error("two different changes share a hash")
	}
}

// TestNormalizeGolden pins exactly what Normalize keeps.
func TestNormalizeGolden(t *testing.T) {
	in, err := os.ReadFile(filepath.Join("testdata", "normalize-input.patch"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := Normalize(in)
	if err != nil {
		t.Fatal(err)
	}
	testutil.Golden(t, "normalize-output.golden", got)
}

func TestUnsafePaths(t *testing.T) {
	tests := map[string]string{
		"dot-dot":         "diff --git a/../x b/../x\n--- a/../x\n+++ b/../x\n@@ -1 +1 @@\n-a\n+b\n",
		"inner dot-dot":   "diff --git a/src/../../x b/src/../../x\nnew file mode 100644\n--- /dev/null\n+++ b/src/../../x\n@@ -0,0 +1 @@\n+b\n",
		".git":            "diff --git a/.git/config b/.git/config\n--- a/.git/config\n+++ b/.git/config\n@@ -1 +1 @@\n-a\n+b\n",
		".GIT in subdir":  "diff --git a/sub/.GIT/hooks/x b/sub/.GIT/hooks/x\nnew file mode 100755\n--- /dev/null\n+++ b/sub/.GIT/hooks/x\n@@ -0,0 +1 @@\n+b\n",
		"rename outside":  "diff --git a/ok b/../ok\nsimilarity index 100%\nrename from ok\nrename to ../ok\n",
		"traditional abs": "--- /etc/shadow\n+++ /etc/shadow\n@@ -1 +1 @@\n-a\n+b\n",
	}
	for name, diff := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := Normalize([]byte(diff)); !errors.Is(err, ErrUnsafePath) {
				t.Errorf("Normalize: %v, want ErrUnsafePath", err)
			}
			if _, err := ParseMbox([]byte(diff)); !errors.Is(err, ErrUnsafePath) {
				t.Errorf("ParseMbox: %v, want ErrUnsafePath", err)
			}
		})
	}
}
