package build_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/criu-forge/criu-forge/internal/build"
	"github.com/criu-forge/criu-forge/internal/sandbox"
	"github.com/criu-forge/criu-forge/internal/testutil"
)

// helloSource copies the fixture C project to a fresh directory.
func helloSource(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"Makefile", "hello.c"} {
		data, err := os.ReadFile(filepath.Join("..", "sandbox", "testdata", "hello", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// hostSpec builds the fixture in the machine's own root, read-only through
// bubblewrap: the whole build path without making a builder.
func hostSpec(t *testing.T, src, out, cache string) build.Spec {
	t.Helper()
	testutil.RequireRoot(t)
	testutil.RequireTool(t, "bwrap", "bubblewrap")
	testutil.RequireTool(t, "cc", "gcc")
	testutil.RequireTool(t, "make", "make")
	return build.Spec{
		SourceDir: src, SourceID: "src-1",
		Target:   sandbox.Target{Name: "host", Distro: "debian", Release: "bookworm", Family: "deb"},
		Steps:    []string{"make", "make install DESTDIR=/build/stage PREFIX=/usr"},
		Runner:   &sandbox.Bubblewrap{},
		Builder:  &sandbox.Builder{Key: "host", ID: "host", Root: "/"},
		CacheDir: cache, OutDir: out,
	}
}

func TestBuildCache(t *testing.T) {
	src := helloSource(t)
	out, cache := t.TempDir(), t.TempDir()
	var progress bytes.Buffer
	spec := hostSpec(t, src, out, cache)
	spec.Progress = &progress

	first, err := build.Build(context.Background(), spec)
	if err != nil {
		t.Fatalf("first build: %v\n%s", err, progress.String())
	}
	if first.CacheHit {
		t.Fatal("first build reported a cache hit")
	}
	if _, err := os.Stat(filepath.Join(first.StageDir, "usr", "bin", "hello")); err != nil {
		t.Fatalf("staged program: %v", err)
	}
	var rec build.Record
	data, _ := os.ReadFile(first.RecordPath)
	if err := json.Unmarshal(data, &rec); err != nil || rec.Key != first.Key || rec.Builder.ID != "host" || rec.SourceID != "src-1" {
		t.Fatalf("record %s: %v %+v", first.RecordPath, err, rec)
	}
	if log, _ := os.ReadFile(first.LogPath); !strings.Contains(string(log), "hello.c") {
		t.Errorf("build log lacks the compiler command:\n%s", log)
	}

	tests := []struct {
		name    string
		change  func(*build.Spec)
		wantHit bool
	}{
		{name: "unchanged", change: func(*build.Spec) {}, wantHit: true},
		{name: "more jobs change nothing", change: func(s *build.Spec) { s.Jobs = 7 }, wantHit: true},
		{name: "source id", change: func(s *build.Spec) { s.SourceID = "src-2" }},
		{name: "make variable", change: func(s *build.Spec) { s.MakeVars = map[string]string{"V": "1"} }},
		{name: "deps", change: func(s *build.Spec) { s.Deps = []string{"make"} }},
		{name: "steps", change: func(s *build.Spec) { s.Steps = append([]string{"true"}, s.Steps...) }},
		{name: "builder", change: func(s *build.Spec) { s.Builder = &sandbox.Builder{Key: "host", ID: "host-2", Root: "/"} }},
		{name: "date", change: func(s *build.Spec) { s.SourceDateEpoch = 1 }},
		{name: "rebuild forced", change: func(s *build.Spec) { s.Rebuild = true }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := spec
			tt.change(&s)
			key := build.Key(s, s.Builder.ID)
			if (key == first.Key) != (tt.wantHit || s.Rebuild) {
				t.Errorf("key changed = %v, want %v", key != first.Key, !tt.wantHit)
			}
			if tt.wantHit {
				start := time.Now()
				res, err := build.Build(context.Background(), s)
				if err != nil {
					t.Fatal(err)
				}
				if !res.CacheHit {
					t.Error("not a cache hit")
				}
				t.Logf("cache hit in %s", time.Since(start))
			}
		})
	}
	if !strings.Contains(progress.String(), "cached: host (key "+first.Key+")") {
		t.Errorf("progress does not say it reused the output:\n%s", progress.String())
	}

	// A damaged output is not intact: the next build makes it again.
	os.WriteFile(filepath.Join(first.StageDir, "usr", "bin", "hello"), []byte("truncated"), 0o755)
	res, err := build.Build(context.Background(), spec)
	if err != nil || res.CacheHit {
		t.Fatalf("build over a damaged output: hit=%v err=%v", res != nil && res.CacheHit, err)
	}
}

// A build cancelled half way leaves no output that looks complete, and the
// previous output (if any) stays as it was.
func TestKilledBuildIsNotAHit(t *testing.T) {
	src := helloSource(t)
	out, cache := t.TempDir(), t.TempDir()
	spec := hostSpec(t, src, out, cache)
	spec.Steps = []string{"make", "touch /build/stage/partial; sleep 30"}
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	if _, err := build.Build(ctx, spec); err == nil {
		t.Fatal("cancelled build succeeded")
	}
	if _, err := os.Stat(filepath.Join(out, "host", "build.json")); err == nil {
		t.Fatal("a cancelled build left a build record")
	}
	spec.Steps[1] = "make install DESTDIR=/build/stage"
	res, err := build.Build(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	if res.CacheHit {
		t.Error("the build after a cancelled one was a cache hit")
	}
	if _, err := os.Stat(filepath.Join(res.StageDir, "partial")); err == nil {
		t.Error("the cancelled build's partial stage leaked into the output")
	}
	if left, _ := filepath.Glob(filepath.Join(out, ".tmp-*")); len(left) != 0 {
		t.Errorf("work directories left: %v", left)
	}
}

func TestFailureShowsLogTail(t *testing.T) {
	src := helloSource(t)
	out, cache := t.TempDir(), t.TempDir()
	var progress bytes.Buffer
	spec := hostSpec(t, src, out, cache)
	spec.Progress = &progress
	spec.Steps = []string{"for i in $(seq 1 100); do echo line-$i; done; exit 3"}
	_, err := build.Build(context.Background(), spec)
	if err == nil {
		t.Fatal("failing step succeeded")
	}
	logPath := filepath.Join(out, "host.failed", "build.log")
	if !strings.Contains(err.Error(), logPath) {
		t.Errorf("error %q does not name the log %s", err, logPath)
	}
	p := progress.String()
	if !strings.Contains(p, "line-100") || !strings.Contains(p, "line-61\n") || strings.Contains(p, "line-60\n") {
		t.Errorf("progress should show exactly the last 40 lines:\n%s", p)
	}
	if _, err := os.Stat(filepath.Join(out, "host", "build.json")); err == nil {
		t.Error("a failed build left a record")
	}
}

func TestBuildAllKeepsGoingAndSerializesATarget(t *testing.T) {
	src := helloSource(t)
	out, cache := t.TempDir(), t.TempDir()
	good := hostSpec(t, src, out, cache)
	bad := good
	bad.Target.Name = "broken"
	bad.Steps = []string{"exit 1"}
	var progress bytes.Buffer
	good.Progress, bad.Progress = &progress, &progress
	outcomes := build.BuildAll(context.Background(), []build.Spec{bad, good}, 2)
	if outcomes[0].Err == nil || outcomes[1].Err != nil || outcomes[1].Result == nil {
		t.Fatalf("outcomes: %+v", outcomes)
	}

	// Two builds of the same target at once: one builds, the other waits
	// for the lock and then finds the output.
	same := good
	same.SourceID = "src-concurrent"
	var wg sync.WaitGroup
	results := make([]*build.Result, 2)
	for i := range results {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			r, err := build.Build(context.Background(), same)
			if err != nil {
				t.Error(err)
			}
			results[i] = r
		}(i)
	}
	wg.Wait()
	if results[0] == nil || results[1] == nil || results[0].CacheHit == results[1].CacheHit {
		t.Errorf("want exactly one build and one hit, got %+v %+v", results[0], results[1])
	}
}

func TestDefaultSteps(t *testing.T) {
	tests := []struct {
		name string
		spec build.Spec
		want []string
	}{
		{name: "debian without man tools", spec: build.Spec{Target: sandbox.Target{Distro: "debian", Release: "bookworm", Arch: "amd64"}, GitID: "v4.2.1-3-gabc"}, want: []string{
			"make -j$(nproc) GITID=v4.2.1-3-gabc LIBDIR=/usr/lib/x86_64-linux-gnu 'PIPFLAGS=--ignore-installed --no-build-isolation --no-deps --no-index --progress-bar off --upgrade --no-compile' PREFIX=/usr PYTHON=python3 WERROR=0",
			"make -o install-man install DESTDIR=/build/stage GITID=v4.2.1-3-gabc LIBDIR=/usr/lib/x86_64-linux-gnu 'PIPFLAGS=--ignore-installed --no-build-isolation --no-deps --no-index --progress-bar off --upgrade --no-compile' PREFIX=/usr PYTHON=python3 WERROR=0",
		}},
		{name: "rpm with man tools and jobs", spec: build.Spec{Target: sandbox.Target{Distro: "rocky", Release: "9", Arch: "amd64"}, Jobs: 2, Deps: []string{"rubygem-asciidoctor", "xmlto"}, MakeVars: map[string]string{"RUNDIR": "/run/criu", "CFLAGS": "-O2 -g"}}, want: []string{
			"make -j2 'CFLAGS=-O2 -g' LIBDIR=/usr/lib64 'PIPFLAGS=--ignore-installed --no-build-isolation --no-deps --no-index --progress-bar off --upgrade --no-compile' PREFIX=/usr PYTHON=python3 RUNDIR=/run/criu WERROR=0",
			"make install DESTDIR=/build/stage 'CFLAGS=-O2 -g' LIBDIR=/usr/lib64 'PIPFLAGS=--ignore-installed --no-build-isolation --no-deps --no-index --progress-bar off --upgrade --no-compile' PREFIX=/usr PYTHON=python3 RUNDIR=/run/criu WERROR=0",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := build.DefaultSteps(tt.spec)
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// --verbose streams the compiler output, prefixed by the target, besides
// writing it to the log; without it only the stage lines appear.
func TestVerboseStreamsTheLog(t *testing.T) {
	for _, verbose := range []bool{false, true} {
		src := helloSource(t)
		var progress bytes.Buffer
		spec := hostSpec(t, src, t.TempDir(), t.TempDir())
		spec.Verbose, spec.Progress = verbose, &progress
		if _, err := build.Build(context.Background(), spec); err != nil {
			t.Fatal(err)
		}
		streamed := strings.Contains(progress.String(), "host| cc -O2 -o hello hello.c")
		if streamed != verbose {
			t.Errorf("verbose=%v: compiler line streamed=%v:\n%s", verbose, streamed, progress.String())
		}
		for _, stage := range []string{"host: copy: ", "host: build: step 1/"} {
			if !strings.Contains(progress.String(), stage) {
				t.Errorf("verbose=%v: progress lacks the stage line %q", verbose, stage)
			}
		}
	}
}
