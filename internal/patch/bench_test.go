package patch

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/criu-forge/criu-forge/internal/testutil/upstream"
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
// per patch, two ways, alternating in each iteration so both see the same
// machine load:
//
//   - forge: read and parse the patch files (ParseMbox), Apply them as
//     commits onto v4.1.1 (already in the repository's pack), and Checkout
//     a new repository with its pack, work tree (all 2,100 files) and index;
//   - git-am: `git am` of the same files in a clone whose work tree is
//     already checked out at v4.1.1 (that checkout is not timed; git am
//     rewrites only the files the patches touch).
//
// It reports forge-ms/op, git-am-ms/op and forge/git-am (the ratio);
// scripts/bench-prepare runs it and prints them.
func BenchmarkPrepareSeries(b *testing.B) {
	f := upstream.New(b)
	files := perFileSeries(b, f.Dir, "v4.1.1", "v4.2.1")
	base := plumbing.NewHash(f.Commits["v4.1.1"])
	wantTree := strings.TrimSpace(gitCmd(b, f.Dir, "rev-parse", f.Commits["v4.2.1"]+"^{tree}"))
	work := filepath.Join(b.TempDir(), "am")
	gitCmd(b, "", "clone", "-q", f.Dir, work)
	outRoot := b.TempDir()
	var forge, apply, am, forgeCPU, amCPU time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// Outputs and caches are kept until the end: deleting thousands of
		// files between runs slows the next run's file creation (ext4
		// skips recently freed inodes), which would only measure the
		// benchmark itself.
		out := filepath.Join(outRoot, "out"+strconv.Itoa(i))
		// A fresh cache each time: a second prepare of the same series
		// finds its commits already stored and skips writing them.
		cache := filepath.Join(outRoot, "cache"+strconv.Itoa(i)+".git")
		if out, err := exec.Command("cp", "-a", f.Dir, cache).CombinedOutput(); err != nil {
			b.Fatalf("copy the fixture: %v\n%s", err, out)
		}
		start, startCPU := time.Now(), processCPU()
		head, n, applied := prepareSeries(b, cache, base, files, out)
		forge += time.Since(start)
		apply += applied
		forgeCPU += processCPU() - startCPU
		if n != len(files) {
			b.Fatalf("%d commits for %d patches", n, len(files))
		}
		if got := strings.TrimSpace(gitCmd(b, out, "rev-parse", "HEAD^{tree}")); got != wantTree || head.IsZero() {
			b.Fatalf("result tree %s, v4.2.1 has %s", got, wantTree)
		}

		gitCmd(b, work, "checkout", "-q", "-f", "-B", "am", "v4.1.1")
		start = time.Now()
		cpu := gitAm(b, work, files)
		am += time.Since(start)
		amCPU += cpu
		if got := strings.TrimSpace(gitCmd(b, work, "rev-parse", "HEAD^{tree}")); got != wantTree {
			b.Fatalf("git am result tree %s, v4.2.1 has %s", got, wantTree)
		}
		if got := strings.TrimSpace(gitCmd(b, work, "rev-list", "--count", "v4.1.1..HEAD")); got != strconv.Itoa(len(files)) {
			b.Fatalf("git am made %s commits", got)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(forge.Milliseconds())/float64(b.N), "forge-ms/op")
	b.ReportMetric(float64(am.Milliseconds())/float64(b.N), "git-am-ms/op")
	b.ReportMetric(float64(forge)/float64(am), "forge/git-am")
	b.ReportMetric(float64(apply.Milliseconds())/float64(b.N), "apply-ms/op")
	b.ReportMetric(float64(apply)/float64(am), "apply/git-am")
	b.ReportMetric(float64(len(files)), "patches")
	b.ReportMetric(float64(forgeCPU.Milliseconds())/float64(b.N), "forge-cpu-ms/op")
	b.ReportMetric(float64(amCPU.Milliseconds())/float64(b.N), "git-am-cpu-ms/op")
}

// processCPU is the user+system time this process has used so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// gitAm runs `git am` on files in work and returns its user+system time.
func gitAm(b *testing.B, work string, files []string) time.Duration {
	cmd := exec.Command("git", append([]string{"am", "-q", "--whitespace=nowarn"}, files...)...)
	cmd.Dir = work
	cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
		"GIT_COMMITTER_NAME=Test", "GIT_COMMITTER_EMAIL=test@example.org")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("git am: %v\n%s", err, out)
	}
	return cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
}

// prepareSeries is what `prepare` does with local patch files: open the
// cached repository, parse, apply, check out. It returns the head, the
// number of commits made and how long opening, parsing and applying took
// (the part that does what git am does: one commit per patch).
func prepareSeries(b *testing.B, cache string, base plumbing.Hash, files []string, out string) (plumbing.Hash, int, time.Duration) {
	start := time.Now()
	repo, err := git.PlainOpen(cache)
	if err != nil {
		b.Fatal(err)
	}
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
	applied := time.Since(start)
	if err := Checkout(context.Background(), repo, head, out); err != nil {
		b.Fatal(err)
	}
	n := 0
	for _, o := range outcomes {
		if o.Status == Applied {
			n++
		}
	}
	return head, n, applied
}
