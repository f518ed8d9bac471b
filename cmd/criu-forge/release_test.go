package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/criu-forge/criu-forge/internal/testutil"
)

// TestReleaseCheck runs scripts/release-check: actionlint on the example
// workflow, goreleaser check, a snapshot release, and criu-forge's own .deb
// and .rpm installed with dpkg and rpm into throwaway roots, where
// `criu-forge version` must report what goreleaser set. It is a test
// (gated as heavy: two cross builds, a few minutes) rather than a step of
// .ci/run so that CI runs it with the other end-to-end tests and a plain
// `go test` skips it.
func TestReleaseCheck(t *testing.T) {
	testutil.RequireHeavy(t)
	for tool, pkg := range map[string]string{"git": "git", "dpkg": "dpkg", "rpm": "rpm", "jq": "jq", "readelf": "binutils"} {
		testutil.RequireTool(t, tool, pkg)
	}
	script := filepath.Join(testutil.RepoRoot(t), "scripts", "release-check")
	cmd := exec.Command(script)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("scripts/release-check: %v (its output is above)", err)
	}
}

// TestVersionFromLdflags builds the binary the way .goreleaser.yaml does:
// -X silently ignores a variable that does not exist, so a renamed one
// would ship "dev" without this test.
func TestVersionFromLdflags(t *testing.T) {
	goTool := testutil.RequireTool(t, "go", "golang-go")
	bin := filepath.Join(t.TempDir(), "criu-forge")
	ldflags := "-X main.version=1.2.3 -X main.commit=0123abcd -X main.date=2025-06-01T12:00:00Z"
	build := exec.Command(goTool, "build", "-trimpath", "-ldflags", ldflags, "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	want := "criu-forge 1.2.3 (commit 0123abcd, built 2025-06-01T12:00:00Z)\n"
	for _, args := range [][]string{{"version"}, {"--version"}} {
		out, err := exec.Command(bin, args...).Output()
		if err != nil || string(out) != want {
			t.Errorf("criu-forge %s: %q (%v), want %q", strings.Join(args, " "), out, err, want)
		}
	}
}
