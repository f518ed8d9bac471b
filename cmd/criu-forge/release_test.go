package main

import (
	"os"
	"os/exec"
	"path/filepath"
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
