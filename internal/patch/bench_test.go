package patch

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
)

// perFileSeries writes the 4.1.1 -> 4.2.1 difference as one `git
// format-patch` file per changed path (made with the git CLI from a branch
// with one commit per path) and returns the patch files, in order.
func perFileSeries(b *testing.B, upstreamDir, from, to string) []string {
	b.Helper()
	work := filepath.Join(b.TempDir(), "split")
	gitCmd(b, "", "clone", "-q", "--no-checkout", upstreamDir, work)
	gitCmd(b, work, "checkout", "-q", "-b", "split", from)
	paths := strings.Fields(gitCmd(b, work, "diff", "--no-renames", "--name-only", from, to))
	for _, p := range paths {
		if strings.TrimSpace(gitCmd(b, work, "ls-tree", "--name-only", to, "--", p)) == "" {
			gitCmd(b, work, "rm", "-q", "--", p)
		} else {
			gitCmd(b, work, "checkout", "-q", to, "--", p)
		}
		gitCmd(b, work, "commit", "-q", "--no-verify", "-m", "update "+p+"\n\nSigned-off-by: Test <test@example.org>")
	}
	out := filepath.Join(b.TempDir(), "patches")
	gitCmd(b, work, "format-patch", "-q", "--no-renames", "--binary", "-o", out, from+"..split")
	files, err := filepath.Glob(filepath.Join(out, "*.patch"))
	if err != nil || len(files) != len(paths) {
		b.Fatalf("format-patch wrote %d files for %d paths (%v)", len(files), len(paths), err)
	}
	sort.Strings(files)
	return files
}

// BenchmarkPrepareSeries applies the real 4.1.1 -> 4.2.1 difference, split
// into one patch per changed path (about 220), onto v4.1.1 with one commit
// per patch, two ways, in the same run:
//
//   - forge: read and parse the patch files (ParseMbox), Apply them as
//     commits onto v4.1.1 (already in the repository), and Checkout a new
//     repository with its work tree and index;
//   - git-am: `git am` of the same files in a clone whose work tree is
//     already checked out at v4.1.1 (the checkout is not timed).
//
// scripts/bench-prepare runs it and prints the ratio.
func BenchmarkPrepareSeries(b *testing.B) {
	f, repo := fixture(b)
	files := perFileSeries(b, f.Dir, "v4.1.1", "v4.2.1")
	base := plumbing.NewHash(f.Commits["v4.1.1"])
	want := f.Commits["v4.2.1"]
	wantTree := strings.TrimSpace(gitCmd(b, f.Dir, "rev-parse", want+"^{tree}"))

	b.Run("forge", func(b *testing.B) {
		outRoot := b.TempDir()
		for i := 0; i < b.N; i++ {
			out := filepath.Join(outRoot, "out", string(rune('a'+i%26)))
			b.StartTimer()
			var patches []*Patch
			for _, name := range files {
				data, err := os.ReadFile(name)
				if err != nil {
					b.Fatal(err)
				}
				ps, err := ParseMbox(data)
				if err != nil {
					b.Fatal(err)
				}
				patches = append(patches, ps...)
			}
			head, outcomes, err := Apply(context.Background(), repo, base, patches, Options{Committer: testCommitter})
			if err != nil {
				b.Fatal(err)
			}
			if err := Checkout(context.Background(), repo, head, out); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if len(outcomes) != len(files) {
				b.Fatalf("%d outcomes for %d patches", len(outcomes), len(files))
			}
			if got := strings.TrimSpace(gitCmd(b, out, "rev-parse", "HEAD^{tree}")); got != wantTree {
				b.Fatalf("result tree %s, v4.2.1 has %s", got, wantTree)
			}
			os.RemoveAll(out)
		}
	})

	b.Run("git-am", func(b *testing.B) {
		work := filepath.Join(b.TempDir(), "am")
		gitCmd(b, "", "clone", "-q", f.Dir, work)
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			gitCmd(b, work, "checkout", "-q", "-f", "-B", "am", "v4.1.1")
			b.StartTimer()
			gitCmd(b, work, append([]string{"am", "-q", "--whitespace=nowarn"}, files...)...)
			b.StopTimer()
			if got := strings.TrimSpace(gitCmd(b, work, "rev-parse", "HEAD^{tree}")); got != wantTree {
				b.Fatalf("git am result tree %s, v4.2.1 has %s", got, wantTree)
			}
		}
	})
}
