package rpmmd

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/criu-forge/criu-forge/internal/repo/rpmmd/internal/rpmtest"
	"github.com/criu-forge/criu-forge/internal/testutil"
)

// fileTime is the mtime given to every test package, so metadata is
// reproducible.
var fileTime = time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC)

func day(n int) time.Time { return time.Date(2025, 1, n, 12, 0, 0, 0, time.UTC) }

// sampleSpecs covers what the metadata must carry: files of each kind
// (primary and not), config, dirs, ghosts, symlinks, every dependency kind
// with versions and epochs, a script (pre requires), a changelog longer
// than the limit with equal dates, an epoch, and text needing escapes.
func sampleSpecs() []rpmtest.Spec {
	var changes []rpmtest.Change
	for i := 12; i >= 1; i-- { // newest first, as rpm stores them
		d := day(i)
		if i == 5 {
			d = day(4) // two entries on one date: createrepo_c spreads them
		}
		changes = append(changes, rpmtest.Change{Version: "4.2." + string(rune('0'+i%10)) + "-1", Packager: "Dev <dev@example.org>", Date: d, Notes: []string{"change " + string(rune('a'+i)), "second note"}})
	}
	return []rpmtest.Spec{
		{
			Name: "criu", Version: "4.2.1", Release: "3.cf1",
			Files: map[string]string{
				"/usr/sbin/criu":                 "#!/bin/sh\necho criu\n",
				"/usr/lib64/libcriu.so.2.0":      "lib",
				"/usr/share/doc/criu/README.md":  "readme",
				"/usr/libexec/criu/scripts/x.sh": "#!/bin/sh\n",
			},
			Config:   map[string]string{"/etc/criu/default.conf": "# conf\n"},
			Dirs:     []string{"/var/lib/criu", "/etc/criu.d"},
			Ghosts:   []string{"/run/criu.pid", "/usr/bin/criu-ghost"},
			Symlinks: map[string]string{"/usr/bin/criu-ns": "/usr/sbin/criu"},
			Requires: []string{"libc.so.6()(64bit)", "libprotobuf-c.so.1()(64bit)", "bash >= 5.0", "iproute = 1:6.1.0-3", "/usr/sbin/criu", "criu-pidfd",
				"libc.so.6(GLIBC_2.34)(64bit)", "libc.so.6(GLIBC_2.4)(64bit)", "bash >= 5.0", "criu-pidfd = 4.2.1", "badepoch = x:1.0"},
			Provides:   []string{"criu-pidfd = 4.2.1", "criu(x86-64) = 4.2.1-3.cf1"},
			Conflicts:  []string{"criu-legacy < 4.0", "criu-other"},
			Obsoletes:  []string{"criu-old <= 3.19-1"},
			Recommends: []string{"criu-ns"},
			Suggests:   []string{"crit > 1.0"},
			Changelog:  changes,
			Summary:    "Checkpoint/restore in userspace (with pidfd & <more>)",
			Description: "CRIU with the pidfd series.\n" +
				"Line with \"quotes\", 'apostrophes', <tags> & ampersands; ünïcödé.",
			PostInstall: "#!/bin/sh\ntrue\n",
		},
		{Name: "criu-epoch", Version: "1.0", Release: "1", Epoch: "2", Arch: "arm64",
			Files: map[string]string{"/usr/bin/tool": "x"}, Requires: []string{"criu = 2:4.2.1-3"}},
		{Name: "criu-noarch-doc", Version: "0.1~rc1", Release: "0.1", Arch: "all",
			Files: map[string]string{"/usr/share/doc/criu-doc/index.html": "<html/>"}},
	}
}

// buildSamples builds specs into root/Packages with the fixed mtime and
// returns their paths.
func buildSamples(t testing.TB, root string, specs []rpmtest.Spec) []string {
	t.Helper()
	var paths []string
	for _, s := range specs {
		p, err := rpmtest.Build(filepath.Join(root, "Packages"), s)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, fileTime, fileTime); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	return paths
}

// copyTree copies the regular files below src to dst, keeping mtimes.
func copyTree(t testing.TB, src, dst string) {
	t.Helper()
	err := filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if fi.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := os.WriteFile(target, data, 0o644); err != nil {
			return err
		}
		return os.Chtimes(target, fi.ModTime(), fi.ModTime())
	})
	if err != nil {
		t.Fatal(err)
	}
}

// writeRepo indexes the packages below root with Open + Write.
func writeRepo(t testing.TB, root string) *Repo {
	t.Helper()
	r, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Write(root, nil); err != nil {
		t.Fatal(err)
	}
	return r
}

// rpmbuildFixture is a package made by rpmbuild itself (see
// testdata/README.md): what rpm writes differs from nfpm (rpmlib() and
// file requires, signature-header sizes, a source rpm).
const rpmbuildFixture = "testdata/hello-rpmbuild.rpm"

// allowedDiffs are the documented differences from createrepo_c: none in
// the package records. (repomd.xml's revision and timestamps are not
// compared: createrepo_c uses the wall clock there, we use the newest
// package's file time so output is reproducible.)
var allowedDiffs *regexp.Regexp

func TestMatchesCreaterepoC(t *testing.T) {
	testutil.RequireTool(t, "createrepo_c", "createrepo-c")
	ours := t.TempDir()
	specs := sampleSpecs()
	key, err := rpmtest.SigningKey(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	signed := specs[1]
	signed.Name, signed.SignKeyFile = "criu-signed", key
	buildSamples(t, ours, append(specs, signed))
	if data, err := os.ReadFile(rpmbuildFixture); err == nil {
		p := filepath.Join(ours, "Packages", "hello-rpmbuild.rpm")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(p, fileTime, fileTime)
	}
	ref := t.TempDir()
	copyTree(t, ours, ref)
	testutil.Run(t, ref, "createrepo_c", "--no-database", "--simple-md-filenames", ".")
	r := writeRepo(t, ours)
	if got := len(r.Packages()); got != 5 {
		t.Fatalf("indexed %d packages, want 5", got)
	}
	starts := map[string]int64{}
	for _, p := range r.Packages() {
		starts[p.Name] = p.HeaderStart
	}
	if starts["criu-signed"] <= starts["criu-epoch"] {
		t.Errorf("the signed package's signature header (ends at %d) is no larger than the unsigned one's (%d): not signed?", starts["criu-signed"], starts["criu-epoch"])
	}
	if diffs := metadataDiff(t, ref, ours, allowedDiffs); len(diffs) > 0 {
		t.Errorf("metadata differs from createrepo_c's (-createrepo_c +ours):\n%s", strings.Join(diffs, "\n"))
	}
}

func TestMain(m *testing.M) {
	// rpm tools must not read the developer's ~/.rpmmacros or keyring.
	os.Setenv("HOME", os.TempDir())
	os.Exit(m.Run())
}

var _ = exec.Command

// TestMetadataGolden pins the exact bytes we write for the sample packages,
// so any change to the output is seen in review.
func TestMetadataGolden(t *testing.T) {
	root := t.TempDir()
	buildSamples(t, root, sampleSpecs())
	r := writeRepo(t, root)
	for _, kind := range []struct {
		name  string
		write func(xmlWriter, []*Package)
	}{{"primary", writePrimary}, {"filelists", writeFilelists}, {"other", writeOther}} {
		var buf strings.Builder
		bw := bufio.NewWriter(&buf)
		kind.write(xmlWriter{bw}, r.Packages())
		bw.Flush()
		testutil.Golden(t, "golden/"+kind.name+".xml", []byte(buf.String()))
	}
	repomd, err := os.ReadFile(filepath.Join(root, "repodata", "repomd.xml"))
	if err != nil {
		t.Fatal(err)
	}
	testutil.Golden(t, "golden/repomd.xml", repomd)
}

// TestMatchesCreaterepoCCorpus compares with createrepo_c on the 1,000
// benchmark packages (built once with nfpm and cached).
func TestMatchesCreaterepoCCorpus(t *testing.T) {
	testutil.RequireHeavy(t)
	testutil.RequireTool(t, "createrepo_c", "createrepo-c")
	ours, _ := benchCorpus(t, 1000)
	ref := t.TempDir()
	copyTree(t, ours, ref)
	testutil.Run(t, ref, "createrepo_c", "--no-database", ".")
	writeRepo(t, ours)
	if diffs := metadataDiff(t, ref, ours, allowedDiffs); len(diffs) > 0 {
		t.Errorf("%d differences from createrepo_c (-createrepo_c +ours), first ones:\n%s", len(diffs), strings.Join(diffs[:min(len(diffs), 40)], "\n"))
	}
}
