package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/criu-forge/criu-forge/internal/plan"
	"github.com/criu-forge/criu-forge/internal/testutil"
)

func TestPlanCommand(t *testing.T) {
	rec := filepath.Join(testutil.RepoRoot(t), "recipes", "criu-pidfd.yaml")
	tests := []struct {
		args    []string
		code    int
		targets int
		want    string
	}{
		{[]string{"--json"}, 0, 4, `"matrix"`},
		{[]string{"--json", "--target", "debian-12"}, 0, 1, `"input_key"`},
		{nil, 0, 0, "INPUT KEY"},
		{[]string{"--target", "plan9"}, 1, 0, ""},
	}
	for _, tt := range tests {
		args := append([]string{"--cache-dir", t.TempDir(), "plan", rec, "--out", t.TempDir()}, tt.args...)
		code, stdout, stderr := cli(t, args...)
		if code != tt.code || !strings.Contains(stdout, tt.want) {
			t.Errorf("%v: exit %d (want %d)\n%s%s", tt.args, code, tt.code, stdout, stderr)
			continue
		}
		if tt.targets > 0 {
			var p plan.Plan
			if err := json.Unmarshal([]byte(stdout), &p); err != nil || len(p.Matrix.Include) != tt.targets {
				t.Errorf("%v: %v, %d matrix entries", tt.args, err, len(p.Matrix.Include))
			}
		}
	}
	if code, _, stderr := cli(t, "plan"); code != 2 || !strings.Contains(stderr, "one recipe file") {
		t.Errorf("no recipe: exit %d: %s", code, stderr)
	}
}
