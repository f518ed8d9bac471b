package build_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/criu-forge/criu-forge/internal/build"
	"github.com/criu-forge/criu-forge/internal/sandbox"
	"github.com/criu-forge/criu-forge/internal/testutil"
)

// criuSource extracts the CRIU fixture tarball and commits it, so the
// build has a commit id, a GitID and a commit date, as after `prepare`.
func criuSource(t testing.TB, version string) (dir, commit, gitID string, date int64) {
	t.Helper()
	testutil.RequireTool(t, "git", "git")
	tarball := testutil.CRIUTarball(t, version)
	dir = filepath.Join(t.TempDir(), "criu")
	os.MkdirAll(dir, 0o755)
	testutil.Run(t, dir, "tar", "-xf", tarball, "--strip-components=1")
	git := func(args ...string) string {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@t", "GIT_COMMITTER_NAME=t",
			"GIT_COMMITTER_EMAIL=t@t", "GIT_AUTHOR_DATE=2025-11-20T10:00:00Z", "GIT_COMMITTER_DATE=2025-11-20T10:00:00Z")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git("init", "-q")
	git("add", "-A")
	git("commit", "-q", "-m", "criu "+version)
	commit = git("rev-parse", "HEAD")
	gitID = git("describe", "--always")
	date, _ = strconv.ParseInt(git("log", "-1", "--format=%ct"), 10, 64)
	return dir, commit, gitID, date
}

func criuSpec(t testing.TB, src, commit, gitID string, date int64, r sandbox.Runner) build.Spec {
	return build.Spec{
		SourceDir: src, SourceID: commit, GitID: gitID, SourceDateEpoch: date,
		Target: testutil.BookwormTarget(), Deps: testutil.CRIUDebianDeps,
		Runner: r, CacheDir: testutil.TestCacheDir(t), OutDir: t.TempDir(),
	}
}

type logWriter struct{ t testing.TB }

func (l logWriter) Write(p []byte) (int, error) {
	l.t.Logf("%s", bytes.TrimRight(p, "\n"))
	return len(p), nil
}

// The real CRIU 4.2.1 builds for debian-12 in bubblewrap; the staged criu,
// run in the builder, reports 4.2.1 and the GitID; the cache hits, misses
// and survives a killed build as it should.
func TestCRIUDebian12(t *testing.T) {
	testutil.RequireHeavy(t)
	testutil.RequireTool(t, "bwrap", "bubblewrap")
	r := &sandbox.Bubblewrap{}
	builder := testutil.BookwormBuilder(t, r, testutil.CRIUDebianDeps...)
	src, commit, gitID, date := criuSource(t, "4.2.1")
	spec := criuSpec(t, src, commit, gitID, date, r)
	spec.Progress = logWriter{t}

	res, err := build.Build(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	if res.BuilderID != builder.ID {
		t.Errorf("build ran in builder %s, want %s", res.BuilderID, builder.ID)
	}
	for _, f := range []string{"usr/sbin/criu", "usr/lib/x86_64-linux-gnu/libcriu.so.2", "usr/include/criu/criu.h"} {
		if _, err := os.Stat(filepath.Join(res.StageDir, f)); err != nil {
			t.Errorf("staged tree lacks %s: %v", f, err)
		}
	}
	var out bytes.Buffer
	err = r.Run(context.Background(), sandbox.RunSpec{
		Builder: builder, Cmd: []string{"/build/stage/usr/sbin/criu", "--version"},
		Env:    []string{"LD_LIBRARY_PATH=/build/stage/usr/lib/x86_64-linux-gnu"},
		Mounts: []sandbox.Mount{{Source: res.StageDir, Target: "/build/stage", ReadOnly: true}},
		Stdout: &out, Stderr: &out,
	})
	if err != nil {
		t.Fatalf("criu --version: %v\n%s", err, out.String())
	}
	if v := out.String(); !strings.Contains(v, "Version: 4.2.1\n") || !strings.Contains(v, "GitID: "+gitID+"\n") {
		t.Errorf("criu --version printed %q, want Version: 4.2.1 and GitID: %s", v, gitID)
	}

	start := time.Now()
	again, err := build.Build(context.Background(), spec)
	if err != nil || !again.CacheHit || again.Key != res.Key {
		t.Fatalf("second build: hit=%v err=%v", again != nil && again.CacheHit, err)
	}
	t.Logf("cache hit in %s (scripts/bench-build measures it)", time.Since(start))

	// A changed source (one patched file, a new commit id) is a miss.
	os.WriteFile(filepath.Join(src, "criu", "cr-check.c"), append(mustRead(t, filepath.Join(src, "criu", "cr-check.c")), "\nint criu_forge_test_marker;\n"...), 0o644)
	changed := spec
	changed.SourceID = commit + "-patched"
	res2, err := build.Build(context.Background(), changed)
	if err != nil || res2.CacheHit || res2.Key == res.Key {
		t.Fatalf("build of a changed source: hit=%v err=%v", res2 != nil && res2.CacheHit, err)
	}

	// A build killed half way is not a hit and leaves the last output alone.
	killed := spec
	killed.SourceID = commit + "-killed"
	killed.Rebuild = true
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	if _, err := build.Build(ctx, killed); err == nil {
		t.Fatal("killed build succeeded")
	}
	killed.Rebuild = false
	if k := build.Key(killed, builder.ID); k == res2.Key {
		t.Fatal("killed build has the same key as the previous one")
	}
	rec := mustRead(t, res2.RecordPath)
	if !bytes.Contains(rec, []byte(`"key": "`+res2.Key+`"`)) {
		t.Errorf("the output after a killed build is not the last complete one:\n%s", rec)
	}
	if left, _ := filepath.Glob(filepath.Join(spec.OutDir, ".tmp-*")); len(left) != 0 {
		t.Errorf("killed build left %v", left)
	}
}

func mustRead(t testing.TB, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// BenchmarkCRIUBuild measures, in one run: a cold build (empty ccache)
// against a bare `make -j2 && make install` of the same tree in the same
// builder, a no-op rebuild, and a rebuild after changing one file against
// the cold build, with the ccache alone and with an incremental build.
// scripts/bench-build runs it and prints the ratios.
func BenchmarkCRIUBuild(b *testing.B) {
	testutil.RequireHeavy(b)
	testutil.RequireTool(b, "bwrap", "bubblewrap")
	r := &sandbox.Bubblewrap{}
	builder := testutil.BookwormBuilder(b, r, testutil.CRIUDebianDeps...)
	for i := 0; i < b.N; i++ {
		src, commit, gitID, date := criuSource(b, "4.2.1")
		spec := criuSpec(b, src, commit, gitID, date, r)
		spec.Jobs = 2
		spec.Incremental = true                                           // the cold build seeds the build tree the last measurement reuses
		spec.Target.Name = fmt.Sprintf("bench-%d", time.Now().UnixNano()) // a fresh, empty ccache
		defer os.RemoveAll(filepath.Join(spec.CacheDir, "ccache", spec.Target.Name))
		defer os.RemoveAll(filepath.Join(spec.CacheDir, "worktrees", spec.Target.Name))
		defer os.Remove(filepath.Join(spec.CacheDir, "worktrees", spec.Target.Name+".lock"))

		// Bare: the same commands, in the same builder, without the tool.
		bare := b.TempDir()
		testutil.Run(b, "", "cp", "-a", src+"/.", bare)
		os.RemoveAll(filepath.Join(bare, ".git"))
		stage := b.TempDir()
		steps := build.DefaultSteps(spec)
		start := time.Now()
		var log bytes.Buffer
		err := r.Run(context.Background(), sandbox.RunSpec{
			Builder: builder, Cmd: []string{"sh", "-ec", strings.Join(steps, "\n")}, Dir: "/build/src",
			Env:    []string{"HOME=/tmp", "PIP_BREAK_SYSTEM_PACKAGES=1"},
			Mounts: []sandbox.Mount{{Source: bare, Target: "/build/src"}, {Source: stage, Target: "/build/stage"}},
			Stdout: &log, Stderr: &log,
		})
		if err != nil {
			b.Fatalf("bare make: %v\n%s", err, log.String())
		}
		bareTime := time.Since(start)

		start = time.Now()
		if _, err := build.Build(context.Background(), spec); err != nil {
			b.Fatal(err)
		}
		cold := time.Since(start)

		start = time.Now()
		if res, err := build.Build(context.Background(), spec); err != nil || !res.CacheHit {
			b.Fatalf("no-op rebuild: %v", err)
		}
		noop := time.Since(start)

		// One file changed, from a fresh copy with the ccache only...
		f := filepath.Join(src, "criu", "cr-check.c")
		os.WriteFile(f, append(mustRead(b, f), "\nint criu_forge_bench_marker;\n"...), 0o644)
		plain := spec
		plain.Incremental = false
		plain.SourceID += "-one-file"
		start = time.Now()
		if _, err := build.Build(context.Background(), plain); err != nil {
			b.Fatal(err)
		}
		oneFile := time.Since(start)

		// ... and incrementally, in the build tree the cold build left.
		os.WriteFile(f, append(mustRead(b, f), "\nint criu_forge_bench_marker2;\n"...), 0o644)
		spec.SourceID += "-one-file-incremental"
		start = time.Now()
		if _, err := build.Build(context.Background(), spec); err != nil {
			b.Fatal(err)
		}
		oneFileIncr := time.Since(start)

		b.ReportMetric(bareTime.Seconds(), "bare-s")
		b.ReportMetric(cold.Seconds(), "cold-s")
		b.ReportMetric(cold.Seconds()/bareTime.Seconds(), "cold/bare")
		b.ReportMetric(noop.Seconds(), "noop-s")
		b.ReportMetric(oneFile.Seconds(), "onefile-s")
		b.ReportMetric(oneFile.Seconds()/cold.Seconds(), "onefile/cold")
		b.ReportMetric(oneFileIncr.Seconds(), "incr-s")
		b.ReportMetric(oneFileIncr.Seconds()/cold.Seconds(), "incr/cold")
	}
}

// The same build runs with docker, in the same builder imported as an
// image; it shares the target's ccache with bubblewrap builds.
func TestCRIUDebian12Docker(t *testing.T) {
	testutil.RequireHeavy(t)
	testutil.StartDockerd(t)
	r := sandbox.NewDocker()
	if err := r.Available(); err != nil {
		t.Skipf("docker cannot start here: %v", err)
	}
	builder := testutil.BookwormBuilder(t, r, testutil.CRIUDebianDeps...)
	src, commit, gitID, date := criuSource(t, "4.2.1")
	spec := criuSpec(t, src, commit, gitID, date, r)
	spec.Progress = logWriter{t}
	res, err := build.Build(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err = r.Run(context.Background(), sandbox.RunSpec{
		Builder: builder, Cmd: []string{"/build/stage/usr/sbin/criu", "--version"},
		Mounts: []sandbox.Mount{{Source: res.StageDir, Target: "/build/stage", ReadOnly: true}},
		Stdout: &out, Stderr: &out,
	})
	if err != nil || !strings.Contains(out.String(), "Version: 4.2.1\n") || !strings.Contains(out.String(), "GitID: "+gitID+"\n") {
		t.Errorf("criu --version in docker: %v: %q", err, out.String())
	}
}
