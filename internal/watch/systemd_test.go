package watch

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/criu-forge/criu-forge/internal/testutil"
)

// TestSystemdUnits checks the shipped service and timer with systemd's own
// verifier (the binary path pointed at one that exists here).
func TestSystemdUnits(t *testing.T) {
	analyze := testutil.RequireTool(t, "systemd-analyze", "systemd")
	src := filepath.Join(testutil.RepoRoot(t), "packaging", "systemd")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var units []string
	for _, name := range []string{"criu-forge-watch.service", "criu-forge-watch.timer"} {
		data, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		text := string(data)
		if strings.HasSuffix(name, ".service") && !strings.Contains(text, "/usr/bin/criu-forge --cache-dir ${CACHE_DIRECTORY} watch --apply") {
			t.Errorf("%s does not run watch --apply", name)
		}
		text = strings.ReplaceAll(text, "/usr/bin/criu-forge", self)
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		units = append(units, path)
	}
	// --man=no: the man pages come with the package, not this checkout.
	out, err := exec.Command(analyze, append([]string{"verify", "--man=no"}, units...)...).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) != 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
