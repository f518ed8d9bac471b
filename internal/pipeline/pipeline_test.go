package pipeline

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/criu-forge/criu-forge/internal/recipe"
	"github.com/criu-forge/criu-forge/internal/series"
	"github.com/criu-forge/criu-forge/internal/testutil"
)

const helloMakefile = `PREFIX ?= /usr/local
hello: hello.c
	$(CC) -O2 -o hello hello.c
install: hello
	install -D -m 755 hello $(DESTDIR)$(PREFIX)/bin/hello
`

const helloC = `#include <stdio.h>
int main(void) { puts("hello from upstream"); return 0; }
`

const greetingPatch = `From: Sam Packager <sam@example.org>
Date: Mon, 2 Mar 2026 10:00:00 +0000
Subject: [PATCH] Greet from criu-forge

---
diff --git a/hello.c b/hello.c
--- a/hello.c
+++ b/hello.c
@@ -1,2 +1,2 @@
 #include <stdio.h>
-int main(void) { puts("hello from upstream"); return 0; }
+int main(void) { puts("hello from criu-forge"); return 0; }
`

// tinyUpstream makes a git repository with a C program tagged v1.0.
func tinyUpstream(t *testing.T) string {
	dir := filepath.Join(t.TempDir(), "hello")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{"Makefile": helloMakefile, "hello.c": helloC} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	env := []string{"GIT_AUTHOR_NAME=Up Stream", "GIT_AUTHOR_EMAIL=up@example.org", "GIT_COMMITTER_NAME=Up Stream",
		"GIT_COMMITTER_EMAIL=up@example.org", "GIT_AUTHOR_DATE=2026-01-01T00:00:00Z", "GIT_COMMITTER_DATE=2026-01-01T00:00:00Z"}
	for _, args := range [][]string{{"init", "-q"}, {"add", "."}, {"commit", "-q", "-m", "hello 1.0"}, {"tag", "-a", "v1.0", "-m", "1.0"}} {
		cmd := exec.Command("git", args...)
		cmd.Dir, cmd.Env = dir, append(os.Environ(), env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	return dir
}

// TestBuildTinyProject runs the whole pipeline on a tiny C project: sync,
// prepare with a local patch, a real build in bubblewrap for debian-12, a
// real .deb; then a second run that reuses everything.
func TestBuildTinyProject(t *testing.T) {
	testutil.RequireHeavy(t)
	testutil.RequireRoot(t)
	testutil.RequireTool(t, "bwrap", "bubblewrap")
	testutil.RequireTool(t, "mmdebstrap", "mmdebstrap")
	testutil.RequireTool(t, "dpkg-deb", "dpkg")

	root := t.TempDir()
	up := tinyUpstream(t)
	for _, d := range []string{"recipes", "patches/hello-forge"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "patches/hello-forge/0001-greet.patch"), []byte(greetingPatch), 0o644); err != nil {
		t.Fatal(err)
	}
	deps := strings.Join(testutil.CRIUDebianDeps, ", ")
	body := `name: hello-forge
upstream:
  version: "1.0"
  sources:
    - git: {url: "` + up + `", ref: v1.0}
series:
  - patch: 0001-greet.patch
build:
  deps: {deb: [` + deps + `]}
  steps: ["make", "make install DESTDIR=$DESTDIR PREFIX=/usr"]
package:
  name: hello-forge
  mode: distinct
  maintainer: Test <test@example.org>
  summary: a greeting
targets:
  - {distro: debian, release: "12"}
`
	path := filepath.Join(root, "recipes", "hello-forge.yaml")
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	r, _, err := recipe.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	sopts := series.Options{CacheDir: testutil.TestCacheDir(t)}
	if _, err := series.Sync(ctx, r, sopts); err != nil {
		t.Fatal(err)
	}
	var progress bytes.Buffer
	opts := Options{Series: sopts, OutDir: filepath.Join(root, "out"), Runner: "bubblewrap", Progress: &progress}
	res, err := Build(ctx, r, opts)
	if err != nil {
		t.Fatal(err)
	}
	tr := res.Targets[0]
	if tr.Err != nil {
		t.Fatalf("debian-12: %v\n%s", tr.Err, progress.String())
	}
	if len(tr.Package.Artifacts) != 1 {
		t.Fatalf("artifacts: %+v", tr.Package.Artifacts)
	}
	deb := tr.Package.Artifacts[0].Path
	field := func(name string) string {
		out, err := exec.Command("dpkg-deb", "-f", deb, name).Output()
		if err != nil {
			t.Fatalf("dpkg-deb -f %s: %v", name, err)
		}
		return strings.TrimSpace(string(out))
	}
	if v := field("Version"); v != "1.0+forge1-1~deb12" {
		t.Errorf("Version %q", v)
	}
	contents, err := exec.Command("dpkg-deb", "--contents", deb).Output()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(contents), "./usr/bin/hello") || !strings.Contains(string(contents), "criu-forge.json") {
		t.Errorf("package contents:\n%s", contents)
	}
	x := t.TempDir()
	if out, err := exec.Command("dpkg-deb", "-x", deb, x).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb -x: %v\n%s", err, out)
	}
	if out, err := exec.Command(filepath.Join(x, "usr/bin/hello")).Output(); err != nil || string(out) != "hello from criu-forge\n" {
		t.Errorf("the packaged program says %q (%v): the patch did not reach the build", out, err)
	}

	// Nothing changed: prepare and build are reused.
	progress.Reset()
	again, err := Build(ctx, r, opts)
	if err != nil || again.Targets[0].Err != nil {
		t.Fatalf("second build: %v %v", err, again.Targets[0].Err)
	}
	if !again.Targets[0].Build.CacheHit || !strings.Contains(progress.String(), "unchanged") {
		t.Errorf("second build did not reuse the prepared tree and the build:\n%s", progress.String())
	}
}
