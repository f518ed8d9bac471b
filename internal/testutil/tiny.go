package testutil

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TinyGreetingPatch is a local patch for TinyUpstream that changes what the
// program prints, so a test can see the patch reach the built binary.
const TinyGreetingPatch = `From: Sam Packager <sam@example.org>
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

// TinyUpstream makes a git repository holding a one-file C program (it
// prints "hello from upstream") with a Makefile that honours DESTDIR and
// PREFIX, tagged v1.0: an upstream whose build takes a second, for tests of
// the whole pipeline.
func TinyUpstream(t testing.TB) string {
	t.Helper()
	git := RequireTool(t, "git", "git")
	dir := filepath.Join(t.TempDir(), "hello")
	files := map[string]string{
		"Makefile": "PREFIX ?= /usr/local\nhello: hello.c\n\t$(CC) -O2 -o hello hello.c\ninstall: hello\n\tinstall -D -m 755 hello $(DESTDIR)$(PREFIX)/bin/hello\n",
		"hello.c":  "#include <stdio.h>\nint main(void) { puts(\"hello from upstream\"); return 0; }\n",
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	id := []string{"-c", "user.name=Up Stream", "-c", "user.email=up@example.org"}
	Run(t, dir, git, "init", "-q")
	Run(t, dir, git, "add", ".")
	Run(t, dir, git, append(id, "commit", "-q", "-m", "hello 1.0", "--date", "2026-01-01T00:00:00Z")...)
	Run(t, dir, git, append(id, "tag", "-a", "v1.0", "-m", "1.0")...)
	return dir
}

// TinyRecipe writes root/recipes/NAME.yaml: TinyUpstream's v1.0 at
// upstream, the given series lines (YAML under "series:", or "" for none),
// built with make for debian-12 in the builder every heavy test shares
// (CRIUDebianDeps), packaged as NAME in distinct mode. It returns the path.
func TinyRecipe(t testing.TB, root, name, upstream, series string) string {
	t.Helper()
	if series == "" {
		series = " []"
	} else {
		series = "\n" + series
	}
	body := `name: ` + name + `
upstream:
  version: "1.0"
  sources:
    - git: {url: "` + upstream + `", ref: v1.0}
series:` + series + `
build:
  deps: {deb: [` + strings.Join(CRIUDebianDeps, ", ") + `]}
  steps: ["make", "make install DESTDIR=$DESTDIR PREFIX=/usr"]
package:
  name: ` + name + `
  mode: distinct
  maintainer: Test <test@example.org>
  summary: a greeting
targets:
  - {distro: debian, release: "12"}
`
	path := filepath.Join(root, "recipes", name+".yaml")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
