package packager

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/criu-forge/criu-forge/internal/signing"
	"github.com/criu-forge/criu-forge/internal/testutil"
)

// lintErrors returns the error lines ("E: ..." for lintian, ": E: " for
// rpmlint) of a checker's output.
func lintErrors(out string) []string {
	var errs []string
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "E: ") || strings.Contains(line, ": E: ") {
			errs = append(errs, line)
		}
	}
	return errs
}

func TestLintianAcceptsTheDebs(t *testing.T) {
	t.Parallel()
	testutil.RequireTool(t, "lintian", "lintian")
	testutil.RequireTool(t, "dpkg-query", "dpkg")
	var debs []string
	for _, c := range []struct{ name, mode, split string }{
		{"criu", ModeReplace, SplitSingle},
		{"criu", ModeReplace, SplitDistro},
		{"criu-pidfd", ModeDistinct, SplitSingle},
		{"criu-pidfd", ModeDistinct, SplitDistro},
	} {
		spec := baseSpec(t, t.TempDir())
		spec.Name, spec.Mode, spec.Split = c.name, c.mode, c.split
		for _, a := range runPackage(t, spec).Artifacts {
			debs = append(debs, a.Path)
		}
	}
	cmd := exec.Command("lintian", append([]string{"--pedantic", "--info"}, debs...)...)
	out, _ := cmd.CombinedOutput() // lintian's exit status also counts warnings
	if errs := lintErrors(string(out)); len(errs) > 0 || !strings.Contains(string(out), "W:") && len(out) == 0 {
		t.Errorf("lintian errors:\n%s\n\nfull output:\n%s", strings.Join(errs, "\n"), out)
	}
	// Only the warnings docs/packaging.md accepts, with its reasons.
	accepted := []string{"link-to-shared-library-in-wrong-package", "package-name-doesnt-match-sonames"}
	for _, line := range strings.Split(string(out), "\n") {
		if !strings.HasPrefix(line, "W: ") {
			continue
		}
		ok := false
		for _, tag := range accepted {
			ok = ok || strings.Contains(line, " "+tag+" ")
		}
		if !ok {
			t.Errorf("lintian warning not accepted in docs/packaging.md: %s", line)
		}
	}
}

// rpmlint unpacks packages with `rpm2cpio | cpio -id`; nfpm 2.45's rpms
// name their payload members with absolute paths, so a plain run as root
// writes the package into the real /usr. It runs here read-only over the
// host (bubblewrap) with a cpio that strips the leading slash, and with
// an rpm database that knows the signing key.
func rpmlint(t *testing.T, publicKey string, rpms ...string) string {
	t.Helper()
	testutil.RequireTool(t, "rpmlint", "rpmlint")
	testutil.RequireTool(t, "bwrap", "bubblewrap")
	work := t.TempDir()
	shim := filepath.Join(work, "bin")
	os.MkdirAll(shim, 0o755)
	os.WriteFile(filepath.Join(shim, "cpio"), []byte("#!/bin/sh\nexec /usr/bin/cpio --no-absolute-filenames \"$@\"\n"), 0o755)
	db := filepath.Join(work, "rpmdb")
	output(t, nil, "rpm", "--dbpath", db, "--import", publicKey)
	os.WriteFile(filepath.Join(work, ".rpmmacros"), []byte("%_dbpath "+db+"\n"), 0o644)
	args := []string{"--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--bind", work, work,
		"--setenv", "PATH", shim + ":" + os.Getenv("PATH"), "--setenv", "HOME", work, "--setenv", "TMPDIR", work}
	for _, r := range rpms {
		args = append(args, "--ro-bind", r, r)
	}
	config, err := filepath.Abs("testdata/rpmlint.toml")
	if err != nil {
		t.Fatal(err)
	}
	args = append(args, "--ro-bind", config, config)
	cmd := exec.Command("bwrap", append(append(args, "--", "rpmlint", "-c", config), rpms...)...)
	cmd.Dir = work
	out, _ := cmd.CombinedOutput() // rpmlint's exit status also counts warnings
	if !strings.Contains(string(out), "packages and 0 specfiles checked") {
		t.Fatalf("rpmlint did not run:\n%s", out)
	}
	return string(out)
}

func TestRpmlintAcceptsTheRPMs(t *testing.T) {
	t.Parallel()
	testutil.RequireTool(t, "rpm", "rpm")
	key := testutil.NewPGPKey(t, testutil.PGPKeyOptions{Name: "Forge Lint"})
	dir := t.TempDir()
	keyFile, pubFile := filepath.Join(dir, "key.asc"), filepath.Join(dir, "pub.asc")
	os.WriteFile(keyFile, key.ArmoredPrivate, 0o600)
	os.WriteFile(pubFile, key.ArmoredPublic, 0o644)

	var out string
	for _, c := range []struct{ name, mode, split string }{
		{"criu", ModeReplace, SplitDistro},
		{"criu-pidfd", ModeDistinct, SplitSingle},
	} {
		spec := baseSpec(t, t.TempDir())
		spec.StageDir = stagedTree(t, rpmLibDir)
		spec.Target = el9
		spec.Name, spec.Mode, spec.Split = c.name, c.mode, c.split
		// The host has no rpm database of an EL9 builder: the libraries
		// are named by hand, as a recipe override would.
		spec.Resolve = nil
		spec.Depends = map[string][]string{c.name: {"zlib >= 1.2.11"}}
		spec.RPMSign = &signing.KeyOptions{Path: keyFile}
		var rpms []string
		for _, a := range runPackage(t, spec).Artifacts {
			rpms = append(rpms, a.Path)
		}
		// One build per run: rpmlint cross-checks the packages it is given.
		lint := rpmlint(t, pubFile, rpms...)
		if errs := lintErrors(lint); len(errs) > 0 {
			t.Errorf("rpmlint errors for %s %s/%s:\n%s\n\nfull output:\n%s", c.name, c.mode, c.split, strings.Join(errs, "\n"), lint)
		}
		out += lint
	}
	t.Log(out)
	accepted := []string{"invalid-license", "no-manual-page-for-binary", "manpage-not-compressed",
		"requires-on-release", "no-major-in-name", "only-non-binary-in-usr-lib", "non-standard-group",
		"self-obsoletion", "unversioned-explicit-obsoletes", "no-documentation"}
	for _, line := range strings.Split(out, "\n") {
		if !strings.Contains(line, ": W: ") {
			continue
		}
		ok := false
		for _, tag := range accepted {
			ok = ok || strings.Contains(line, ": W: "+tag)
		}
		if !ok {
			t.Errorf("rpmlint warning not accepted in docs/packaging.md: %s", line)
		}
	}
}
