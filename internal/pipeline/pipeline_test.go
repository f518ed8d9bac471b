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
	up := testutil.TinyUpstream(t)
	if err := os.MkdirAll(filepath.Join(root, "patches/hello-forge"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "patches/hello-forge/0001-greet.patch"), []byte(testutil.TinyGreetingPatch), 0o644); err != nil {
		t.Fatal(err)
	}
	path := testutil.TinyRecipe(t, root, "hello-forge", up, "  - patch: 0001-greet.patch")
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
	if !again.Targets[0].Build.CacheHit || !strings.Contains(progress.String(), "prepare: ") || !strings.Contains(progress.String(), "packages unchanged") {
		t.Errorf("second build did not reuse the prepared tree, the build and the packages:\n%s", progress.String())
	}
	if again.Targets[0].Package.Artifacts[0].SHA256 != tr.Package.Artifacts[0].SHA256 {
		t.Error("the reused package is not the one made first")
	}

	// A damaged package is made again, not reused.
	if err := os.WriteFile(deb, []byte("damaged"), 0o644); err != nil {
		t.Fatal(err)
	}
	progress.Reset()
	third, err := Build(ctx, r, opts)
	if err != nil || third.Targets[0].Err != nil {
		t.Fatalf("third build: %v %v", err, third.Targets[0].Err)
	}
	if strings.Contains(progress.String(), "packages unchanged") || fileSHA256(deb) != tr.Package.Artifacts[0].SHA256 {
		t.Errorf("a damaged package was reused, or not remade byte-identical:\n%s", progress.String())
	}
}
