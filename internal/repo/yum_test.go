package repo

import (
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/files"
	"github.com/goreleaser/nfpm/v2/rpm"

	"github.com/criu-forge/criu-forge/internal/testutil"
)

// makeRPM builds a tiny .rpm with nfpm (arch in Go/nfpm names: amd64, all).
func makeRPM(t testing.TB, dir string, d testDeb, release string) string {
	t.Helper()
	src := filepath.Join(t.TempDir(), "payload")
	os.WriteFile(src, []byte("payload of "+d.Name+" "+d.Version+"\n"+d.Payload), 0o644)
	info := nfpm.WithDefaults(&nfpm.Info{
		Name: d.Name, Arch: d.Arch, Version: d.Version, Release: release, VersionSchema: "none",
		Maintainer: "criu-forge tests <tests@criu-forge.invalid>", Description: "test package " + d.Name,
		License: "GPL-2.0", MTime: time.Unix(1700000000, 0),
		Overridables: nfpm.Overridables{Contents: files.Contents{{Source: src, Destination: "/usr/share/" + d.Name + "/payload"}}},
	})
	path := filepath.Join(dir, fmt.Sprintf("%s-%s-%s.%s.rpm", d.Name, d.Version, release, d.Arch))
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := rpm.DefaultRPM.Package(info, f); err != nil {
		t.Fatalf("nfpm rpm: %v", err)
	}
	return path
}

// dnfQuery runs dnf against a repository URL with repomd.xml's signature
// checked against the key at keyURL.
func dnfQuery(t *testing.T, repoURL, keyURL string, args ...string) (string, error) {
	t.Helper()
	root := t.TempDir()
	base := []string{"-y", "-q", "--installroot=" + root, "--releasever=9", "--setopt=reposdir=/dev/null",
		"--setopt=skip_if_unavailable=False", "--setopt=cachedir=" + filepath.Join(root, "cache"),
		"--repofrompath=local," + repoURL, "--repo=local", "--nogpgcheck",
		"--setopt=local.repo_gpgcheck=1", "--setopt=local.gpgkey=" + keyURL}
	out, err := exec.Command("dnf", append(base, args...)...).CombinedOutput()
	return string(out), err
}

// TestPublishYumBesideApt publishes .debs and .rpms together: the yum
// repositories (one per release and arch, noarch in every arch) switch with
// the apt side, dnf reads them with repomd.xml's signature checked, and the
// same rpm version with other content is refused.
func TestPublishYumBesideApt(t *testing.T) {
	testutil.RequireTool(t, "dnf", "dnf")
	pkgs := t.TempDir()
	dir := t.TempDir()
	rep := publish(t, dir, PublishOptions{}, paths(
		makeDeb(t, pkgs, testDeb{Name: "criu", Version: "4.2.1+forge3~deb12u1"}),
		makeRPM(t, pkgs, testDeb{Name: "criu", Version: "4.2.1", Arch: "amd64"}, "3.el9"),
		makeRPM(t, pkgs, testDeb{Name: "criu", Version: "4.2.1", Arch: "arm64"}, "3.el9"),
		makeRPM(t, pkgs, testDeb{Name: "criu-doc", Version: "4.2.1", Arch: "all"}, "3.el9"),
		makeRPM(t, pkgs, testDeb{Name: "criu", Version: "4.2.1", Arch: "amd64"}, "3.fc41"),
	)...)
	if len(rep.Added) != 5 {
		t.Fatalf("report %+v", rep)
	}
	checkRepo(t, dir)
	srv := httptest.NewServer(Handler(dir, nil)) // dnf reads it as clients will: over HTTP
	defer srv.Close()
	key := srv.URL + "/" + keyringArmor
	for repo, want := range map[string][]string{
		"el9/x86_64":  {"criu-0:4.2.1-3.el9.x86_64", "criu-doc-0:4.2.1-3.el9.noarch"},
		"el9/aarch64": {"criu-0:4.2.1-3.el9.aarch64", "criu-doc-0:4.2.1-3.el9.noarch"},
		"fc41/x86_64": {"criu-0:4.2.1-3.fc41.x86_64"},
	} {
		arch := filepath.Base(repo)
		out, err := dnfQuery(t, srv.URL+"/yum/"+repo, key, "repoquery", "--forcearch="+arch, "--queryformat", "%{name}-%{epoch}:%{version}-%{release}.%{arch}", "*")
		if err != nil {
			t.Fatalf("dnf on yum/%s: %v\n%s", repo, err, out)
		}
		var got []string // dnf also reports the key import
		for _, f := range strings.Fields(out) {
			if strings.Contains(f, "-0:") {
				got = append(got, f)
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("yum/%s: dnf lists %v, want %v", repo, got, want)
		}
	}

	// Another rpm: only its repository changes; the same rpm with other
	// content is refused.
	publish(t, dir, PublishOptions{}, paths(makeRPM(t, pkgs, testDeb{Name: "criu", Version: "4.2.2", Arch: "amd64"}, "1.el9"))...)
	out, err := dnfQuery(t, srv.URL+"/yum/el9/x86_64", key, "repoquery", "--forcearch=x86_64", "criu")
	if err != nil || !strings.Contains(out, "criu-0:4.2.2-1.el9.x86_64") {
		t.Fatalf("after adding 4.2.2: %v\n%s", err, out)
	}
	before := treeSnapshot(t, dir)
	other := makeRPM(t, t.TempDir(), testDeb{Name: "criu", Version: "4.2.2", Arch: "amd64", Payload: "rebuilt"}, "1.el9")
	if _, err := publishErr(t, dir, other); err == nil || !strings.Contains(err.Error(), "other content") {
		t.Fatalf("same rpm version, other content: got %v", err)
	}
	if after := treeSnapshot(t, dir); len(after) != len(before) {
		t.Errorf("a refused rpm changed the repository")
	}
}

// TestPublishKeepYum: --keep holds for each yum release, name and arch in
// rpm's version order, and what falls out leaves the pool and the metadata.
func TestPublishKeepYum(t *testing.T) {
	rpms, dir := t.TempDir(), t.TempDir()
	mk := func(v string) string {
		return makeRPM(t, rpms, testDeb{Name: "criu", Version: v, Arch: "amd64"}, "1.el9")
	}
	v2, v9, v10 := mk("4.2.1+forge2"), mk("4.2.1+forge9"), mk("4.2.1+forge10")
	publish(t, dir, PublishOptions{Keep: 2}, paths(v2, v9)...)
	rep := publish(t, dir, PublishOptions{Keep: 2}, paths(v10)...)
	if len(rep.Removed) != 1 || !strings.Contains(rep.Removed[0], "criu-4.2.1+forge2-1.el9") {
		t.Fatalf("removed %v, want the forge2 build (forge10 sorts above forge9 in rpm's order)", rep.Removed)
	}
	pool, _ := filepath.Glob(filepath.Join(dir, "pool", "yum", "el9", "*.rpm"))
	if len(pool) != 2 {
		t.Errorf("pool holds %v, want the 2 kept rpms", pool)
	}
	primary, _ := filepath.Glob(filepath.Join(dir, "yum", "el9", "x86_64", "repodata", "*-primary.xml.gz"))
	if len(primary) != 1 {
		t.Fatalf("primary metadata: %v", primary)
	}
	out, err := exec.Command("sh", "-c", "zcat "+primary[0]).Output()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "forge2") || !strings.Contains(string(out), "forge10") {
		t.Errorf("yum metadata still names the dropped version, or not the new one")
	}
}
