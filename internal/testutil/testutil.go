// Package testutil holds the test helpers shared by every stage's tests:
// locating the shared fixtures, skipping (loudly) when a real tool is
// missing, golden files with -update, and the heavy-test gate.
package testutil

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// Update regenerates golden files: go test ./... -update
var Update = flag.Bool("update", false, "rewrite golden files under testdata/")

// HeavyEnv names the variable that turns on the end-to-end tests (real CRIU
// builds, containers, package managers). .ci/run sets it.
const HeavyEnv = "CRIU_FORGE_E2E"

// RequireHeavy skips t unless the heavy tests were asked for.
func RequireHeavy(t testing.TB) {
	t.Helper()
	if os.Getenv(HeavyEnv) == "" {
		t.Skipf("end-to-end test: set %s=1 to run it (.ci/run does)", HeavyEnv)
	}
}

// RequireTool skips t when a command is not on PATH, naming the Debian
// package that provides it, and returns its path.
func RequireTool(t testing.TB, name, debianPackage string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not found on PATH: install the Debian package %s (scripts/setup-test-deps does)", name, debianPackage)
	}
	return p
}

// RequireRoot skips t unless it runs as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (namespaces, chroot or package installs)")
	}
}

// RepoRoot returns the repository's top folder (where go.mod is).
func RepoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// SharedDir returns ../shared beside the repository, or the folder named by
// CRIU_FORGE_SHARED; it skips t when neither exists.
func SharedDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("CRIU_FORGE_SHARED")
	if dir == "" {
		dir = filepath.Join(RepoRoot(t), "..", "shared")
	}
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("shared fixtures not found at %s (set CRIU_FORGE_SHARED): %v", dir, err)
	}
	return dir
}

// CRIUTarball returns the path of a real CRIU release tarball from the shared
// fixtures (version "4.1.1" or "4.2.1") after checking it against SHA256SUMS.
func CRIUTarball(t testing.TB, version string) string {
	t.Helper()
	dir := filepath.Join(SharedDir(t), "fixtures", "criu")
	name := "criu_" + version + ".orig.tar.xz"
	path := filepath.Join(dir, name)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Skipf("CRIU fixture %s missing: %v", path, err)
	}
	sums, err := os.ReadFile(filepath.Join(dir, "SHA256SUMS"))
	if err != nil {
		t.Fatalf("read SHA256SUMS: %v", err)
	}
	sum := sha256.Sum256(data)
	want := ""
	for _, line := range strings.Split(string(sums), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[1] == name {
			want = f[0]
		}
	}
	if want != hex.EncodeToString(sum[:]) {
		t.Fatalf("fixture %s does not match SHA256SUMS (want %q)", path, want)
	}
	return path
}

// Golden compares got with testdata/<name>; with -update it rewrites the file.
func Golden(t testing.TB, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *Update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("golden file %s: %v (run go test -update to create it)", path, err)
	}
	if !bytes.Equal(want, got) {
		t.Errorf("%s differs from golden file (run go test -update if the change is intended)\n--- want\n%s\n--- got\n%s", path, want, got)
	}
}

// Run runs a command and fails t with its output when it fails.
func Run(t testing.TB, dir string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}
