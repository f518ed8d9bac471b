package packager

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/criu-forge/criu-forge/internal/sandbox"
	"github.com/criu-forge/criu-forge/internal/signing"
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
	inRoot := enterRoot(root, "--bind", root, "/", "--ro-bind", debs, "/debs")
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

// enterRoot returns a Runner into a root file system with bubblewrap, set
// up as SANDBOX-NOTES says apt needs it: no user namespace (apt's _apt
// user), a 1777 /tmp.
func enterRoot(root string, binds ...string) Runner {
	return func(ctx context.Context, args ...string) ([]byte, error) {
		bw := append(append(append([]string(nil), binds...), testutil.AptBwrapFlags()...),
			"--setenv", "PATH", "/usr/sbin:/usr/bin:/sbin:/bin", "--setenv", "DEBIAN_FRONTEND", "noninteractive", "--")
		cmd := exec.CommandContext(ctx, "bwrap", append(bw, args...)...)
		out, err := cmd.Output()
		if ee, ok := err.(*exec.ExitError); ok {
			return out, &commandError{args, err, string(ee.Stderr)}
		}
		return out, err
	}
}

// TestHeavyRealCRIUPackagesPassLintianAndRpmlint builds CRIU 4.2.1 from
// the fixture tarball in the bookworm builder, installs it into a staged
// tree the way the build stage does, and checks the packages made from it
// with lintian and rpmlint.
func TestHeavyRealCRIUPackagesPassLintianAndRpmlint(t *testing.T) {
	testutil.RequireHeavy(t)
	testutil.RequireRoot(t)
	testutil.RequireTool(t, "bwrap", "bubblewrap")
	tarball := testutil.CRIUTarball(t, "4.2.1")
	b := testutil.BookwormBuilder(t, &sandbox.Bubblewrap{}, testutil.CRIUDebianDeps...)
	work := t.TempDir()
	src, stage := filepath.Join(work, "src"), filepath.Join(work, "stage")
	os.MkdirAll(src, 0o755)
	testutil.Run(t, src, "tar", "-xf", tarball, "--strip-components=1")
	// The builder is read-only here; only the work tree is writable.
	inBuilder := enterRoot(b.Root, "--ro-bind", b.Root, "/", "--bind", work, "/mnt") // /mnt exists in every root
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	makeArgs := []string{"make", "-C", "/mnt/src", "WERROR=0", "PREFIX=/usr", "LIBDIR=/usr/lib/x86_64-linux-gnu",
		"LIBEXECDIR=/usr/libexec", "DESTDIR=/mnt/stage"}
	for _, args := range [][]string{
		append(append([]string(nil), makeArgs...), "-j2", "criu", "lib"),
		append(append([]string(nil), makeArgs...), "install-criu", "install-lib"),
		// What dh_strip / brp-strip do in distro builds.
		{"sh", "-c", "find /mnt/stage -type f -exec sh -c 'head -c4 \"$1\" | grep -q ELF && strip --strip-unneeded \"$1\"' _ {} \\;"},
	} {
		if out, err := inBuilder(ctx, args...); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
	}
	t.Log(testutil.Run(t, "", "find", stage, "-type", "f"))

	spec := baseSpec(t, filepath.Join(work, "out"))
	spec.StageDir = stage
	spec.Upstream.Version, spec.Upstream.Ref = "4.2.1", "v4.2.1"
	spec.Split = SplitDistro
	spec.Resolve = DebianResolver{Run: inBuilder}
	var debs, rpms []string
	start := time.Now()
	for _, a := range runPackage(t, spec).Artifacts {
		debs = append(debs, a.Path)
	}
	t.Logf("packaging the real CRIU tree as split .debs (dependencies resolved in the builder) took %s", time.Since(start))
	// The rpm from the same tree: a bookworm builder has no rpm database
	// for RPMResolver to check against, so the sonames become rpm's
	// capabilities unchecked (what RPMResolver returns after its check).
	rpmSpec := spec
	rpmSpec.Formats, rpmSpec.Resolve = []string{FormatRPM}, sonameCapabilities{}
	rpmSpec.OutDir = filepath.Join(work, "rpm")
	key := testutil.NewPGPKey(t, testutil.PGPKeyOptions{Name: "Forge Heavy"})
	keyFile, pubFile := filepath.Join(work, "key.asc"), filepath.Join(work, "pub.asc")
	os.WriteFile(keyFile, key.ArmoredPrivate, 0o600)
	os.WriteFile(pubFile, key.ArmoredPublic, 0o644)
	rpmSpec.RPMSign = &signing.KeyOptions{Path: keyFile}
	for _, a := range runPackage(t, rpmSpec).Artifacts {
		rpms = append(rpms, a.Path)
	}
	out, _ := exec.Command("lintian", append([]string{"--pedantic"}, debs...)...).CombinedOutput()
	t.Logf("lintian:\n%s", out)
	if errs := lintErrors(string(out)); len(errs) > 0 {
		t.Errorf("lintian errors on the real CRIU packages:\n%s", strings.Join(errs, "\n"))
	}
	lint := rpmlint(t, pubFile, rpms...)
	t.Logf("rpmlint:\n%s", lint)
	if errs := lintErrors(lint); len(errs) > 0 {
		t.Errorf("rpmlint errors on the real CRIU packages:\n%s", strings.Join(errs, "\n"))
	}
	// Into a clean bookworm (minbase, nothing else installed): apt fetches
	// the runtime libraries the ELF scan found from the archive.
	clean := testutil.BookwormBuilder(t, &sandbox.Bubblewrap{})
	root := filepath.Join(work, "clean-root")
	testutil.Run(t, "", "cp", "-a", clean.Root, root)
	debDir := filepath.Dir(debs[0])
	inClean := enterRoot(root, "--bind", root, "/", "--ro-bind", debDir, "/debs")
	install := []string{"apt-get", "install", "-y", "--no-install-recommends"}
	for _, d := range debs {
		install = append(install, "/debs/"+filepath.Base(d))
	}
	for _, args := range [][]string{{"apt-get", "update"}, install} {
		if out, err := inClean(ctx, args...); err != nil {
			t.Fatalf("clean bookworm: %v\n%s", err, out)
		}
	}
	if out, err := inClean(ctx, "criu", "--version"); err != nil || !strings.Contains(string(out), "Version: 4.2.1") {
		t.Errorf("criu --version in a clean bookworm: %v\n%s", err, out)
	}
	var m Manifest
	out, err := inClean(ctx, "cat", "/usr/share/doc/criu/criu-forge.json")
	if err != nil || json.Unmarshal(out, &m) != nil || m.Upstream.Commit != spec.Upstream.Commit || len(m.Patches) != len(spec.Patches) {
		t.Errorf("shipped manifest in a clean bookworm: %v\n%s", err, out)
	}

	// Twice, byte for byte.
	spec.OutDir = filepath.Join(work, "again")
	spec.RPMSign = nil
	first := runPackage(t, spec)
	spec.OutDir = filepath.Join(work, "again2")
	for i, a := range runPackage(t, spec).Artifacts {
		if a.SHA256 != first.Artifacts[i].SHA256 {
			t.Errorf("%s differs between two runs", a.File)
		}
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

// sonameCapabilities maps sonames to rpm capabilities without a builder.
type sonameCapabilities struct{}

func (sonameCapabilities) Resolve(_ context.Context, needs []Needed) (map[string]Dependency, error) {
	out := map[string]Dependency{}
	for _, n := range needs {
		out[n.Soname] = Dependency{Soname: n.Soname, Package: n.Soname + "()(64bit)"}
	}
	return out, nil
}
