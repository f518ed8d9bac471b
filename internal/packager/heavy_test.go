package packager

import (
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/criu-forge/criu-forge/internal/sandbox"
	"github.com/criu-forge/criu-forge/internal/testutil"
)

// TestHeavyAptInstallInBookworm resolves the dependencies inside a real
// bookworm builder (its dpkg database, through bubblewrap), then installs
// the .deb there with apt, runs the packaged criu, reads the shipped
// manifest back and removes the package again.
func TestHeavyAptInstallInBookworm(t *testing.T) {
	testutil.RequireHeavy(t)
	testutil.RequireRoot(t)
	testutil.RequireTool(t, "bwrap", "bubblewrap")
	b := testutil.BookwormBuilder(t, &sandbox.Bubblewrap{}, testutil.CRIUDebianDeps...)
	root := filepath.Join(t.TempDir(), "root")
	testutil.Run(t, "", "cp", "-a", b.Root, root) // the cached builder stays untouched
	debs := t.TempDir()
	// SANDBOX-NOTES: no user namespace (apt's _apt user), a 1777 /tmp.
	inRoot := func(ctx context.Context, args ...string) ([]byte, error) {
		bw := []string{"--bind", root, "/", "--proc", "/proc", "--dev", "/dev", "--unshare-ipc", "--unshare-pid",
			"--unshare-uts", "--unshare-cgroup", "--perms", "1777", "--tmpfs", "/tmp", "--ro-bind", debs, "/debs",
			"--setenv", "PATH", "/usr/sbin:/usr/bin:/sbin:/bin", "--setenv", "DEBIAN_FRONTEND", "noninteractive", "--"}
		cmd := exec.CommandContext(ctx, "bwrap", append(bw, args...)...)
		out, err := cmd.Output()
		if ee, ok := err.(*exec.ExitError); ok {
			return out, &commandError{args, err, string(ee.Stderr)}
		}
		return out, err
	}
	must := func(args ...string) string {
		out, err := inRoot(context.Background(), args...)
		if err != nil {
			t.Fatalf("in bookworm: %v\n%s", err, out)
		}
		return string(out)
	}

	spec := baseSpec(t, debs)
	spec.Resolve = DebianResolver{Run: inRoot}
	res := runPackage(t, spec)
	deb := artifact(t, res, "criu", FormatDeb)

	must("apt-get", "install", "-y", "--no-install-recommends", "/debs/"+deb.File)
	if got := must("dpkg-query", "-W", "-f", "${Version} ${Status}", "criu"); got != deb.Version+" install ok installed" {
		t.Errorf("installed: %q", got)
	}
	if got := must("criu", "--version"); !strings.Contains(got, "Version: 4.2.1") {
		t.Errorf("criu --version: %q", got)
	}
	var m Manifest
	if err := json.Unmarshal([]byte(must("cat", "/usr/share/doc/criu/criu-forge.json")), &m); err != nil {
		t.Fatal(err)
	}
	if m.Upstream.Commit != spec.Upstream.Commit || len(m.Patches) != len(spec.Patches) || m.Patches[0].URL != spec.Patches[0].URL {
		t.Errorf("the installed system reports %+v", m)
	}
	must("apt-get", "remove", "--purge", "-y", "criu")
	if out, err := inRoot(context.Background(), "test", "-e", "/usr/sbin/criu"); err == nil {
		t.Errorf("/usr/sbin/criu left after purge: %s", out)
	}
	if out, err := inRoot(context.Background(), "dpkg-query", "-W", "criu"); err == nil && strings.Contains(string(out), "3.17") {
		t.Errorf("criu still known to dpkg after purge: %s", out)
	}
}

type commandError struct {
	args   []string
	err    error
	stderr string
}

func (e *commandError) Error() string {
	return strings.Join(e.args, " ") + ": " + e.err.Error() + ": " + strings.TrimSpace(e.stderr)
}
