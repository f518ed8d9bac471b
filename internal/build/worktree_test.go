package build_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/criu-forge/criu-forge/internal/build"
)

// An incremental build recompiles only what changed, follows removed
// files, and never reuses a tree whose configuration changed or whose
// build was killed.
func TestIncrementalBuild(t *testing.T) {
	src := helloSource(t)
	out, cache := t.TempDir(), t.TempDir()
	spec := hostSpec(t, src, out, cache)
	spec.Incremental = true
	tree := filepath.Join(cache, "worktrees", "host", "tree")

	steps := []struct {
		name       string
		change     func(s *build.Spec)
		wantCopy   string // what the copy stage says
		wantLog    string // in build.log
		wantOutput string // the staged program prints
		killed     bool
	}{
		{name: "first", change: func(*build.Spec) {}, wantCopy: "fresh copy", wantLog: "hello.c", wantOutput: "hello from criu-forge\n"},
		{name: "unrelated file added", change: func(s *build.Spec) {
			os.WriteFile(filepath.Join(src, "README"), []byte("x"), 0o644)
		}, wantCopy: "synced into the previous build tree", wantLog: "'hello' is up to date", wantOutput: "hello from criu-forge\n"},
		{name: "source changed", change: func(s *build.Spec) {
			replaceIn(t, filepath.Join(src, "hello.c"), `"hello"`, `"hi"`)
			os.Remove(filepath.Join(src, "README"))
		}, wantCopy: "synced into the previous build tree", wantLog: "hello.c", wantOutput: "hi from criu-forge\n"},
		{name: "make variables changed", change: func(s *build.Spec) {
			s.Steps = []string{"make CC=gcc", "make install DESTDIR=/build/stage PREFIX=/usr"}
		}, wantCopy: "fresh copy", wantLog: "gcc -O2", wantOutput: "hi from criu-forge\n"},
		{name: "killed", change: func(s *build.Spec) {
			replaceIn(t, filepath.Join(src, "hello.c"), `"hi"`, `"hey"`)
			replaceIn(t, filepath.Join(src, "Makefile"), "\t$(CC)", "\tsleep 30; $(CC)")
		}, wantCopy: "synced into the previous build tree", killed: true},
		{name: "after a kill", change: func(s *build.Spec) {
			replaceIn(t, filepath.Join(src, "Makefile"), "\tsleep 30; $(CC)", "\t$(CC)")
		}, wantCopy: "fresh copy", wantLog: "hello.c", wantOutput: "hey from criu-forge\n"},
	}
	for i, st := range steps {
		var progress bytes.Buffer
		st.change(&spec)
		spec.SourceID = "src-" + st.name
		spec.Progress = &progress
		ctx := context.Background()
		s := spec
		if st.killed {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, time.Second)
			defer cancel()
		}
		res, err := build.Build(ctx, s)
		if !strings.Contains(progress.String(), st.wantCopy) {
			t.Errorf("step %d %s: progress does not say %q:\n%s", i, st.name, st.wantCopy, progress.String())
		}
		if st.killed {
			if err == nil {
				t.Fatalf("step %d %s: killed build succeeded", i, st.name)
			}
			if _, err := os.Stat(tree); err == nil {
				t.Errorf("step %d %s: a killed build left a reusable tree", i, st.name)
			}
			continue
		}
		if err != nil {
			t.Fatalf("step %d %s: %v\n%s", i, st.name, err, progress.String())
		}
		if log, _ := os.ReadFile(res.LogPath); !strings.Contains(string(log), st.wantLog) {
			t.Errorf("step %d %s: build log lacks %q:\n%s", i, st.name, st.wantLog, log)
		}
		got, err := exec.Command(filepath.Join(res.StageDir, "usr", "bin", "hello")).Output()
		if err != nil || string(got) != st.wantOutput {
			t.Errorf("step %d %s: staged program printed %q (%v), want %q", i, st.name, got, err, st.wantOutput)
		}
	}
	if _, err := os.Stat(filepath.Join(tree, "README")); err == nil {
		t.Error("a file removed from the source stayed in the build tree")
	}
}

func replaceIn(t *testing.T, path, old, new string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil || !bytes.Contains(data, []byte(old)) {
		t.Fatalf("%s lacks %q (%v)", path, old, err)
	}
	os.WriteFile(path, bytes.Replace(data, []byte(old), []byte(new), 1), 0o644)
}
