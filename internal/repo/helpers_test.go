package repo

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/deb"
	"github.com/goreleaser/nfpm/v2/files"

	"github.com/criu-forge/criu-forge/internal/signing"
	"github.com/criu-forge/criu-forge/internal/testutil"
)

// testDeb describes a tiny package made with nfpm for a test.
type testDeb struct {
	Name, Version, Arch string
	Depends             []string
	Payload             string // content of /usr/share/<name>/payload; differs = other bytes
}

// makeDeb builds the package into dir and returns its path.
func makeDeb(t testing.TB, dir string, d testDeb) string {
	t.Helper()
	if d.Arch == "" {
		d.Arch = "amd64"
	}
	src := filepath.Join(t.TempDir(), "payload")
	if err := os.WriteFile(src, []byte("payload of "+d.Name+" "+d.Version+"\n"+d.Payload), 0o644); err != nil {
		t.Fatal(err)
	}
	info := nfpm.WithDefaults(&nfpm.Info{
		Name:          d.Name,
		Arch:          d.Arch,
		Version:       d.Version,
		VersionSchema: "none",
		Maintainer:    "criu-forge tests <tests@criu-forge.invalid>",
		Description:   "test package " + d.Name + "\nA tiny package made by the repo tests.\n\nSecond paragraph.",
		Homepage:      "https://criu-forge.invalid/",
		Section:       "admin",
		Priority:      "optional",
		MTime:         time.Unix(1700000000, 0),
		Overridables: nfpm.Overridables{
			Depends:  d.Depends,
			Contents: files.Contents{{Source: src, Destination: "/usr/share/" + d.Name + "/payload"}},
		},
	})
	path := filepath.Join(dir, fmt.Sprintf("%s_%s_%s.deb", d.Name, d.Version, d.Arch))
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := deb.Default.Package(info, f); err != nil {
		t.Fatalf("nfpm: %v", err)
	}
	return path
}

var (
	testKeyOnce sync.Once
	testKey     testutil.PGPKey
)

// newSigner loads a test key (one per test binary: key generation is
// cheap, but gpg's view of the same key across tests helps debugging).
func newSigner(t testing.TB) *signing.Signer {
	t.Helper()
	testKeyOnce.Do(func() { testKey = testutil.NewPGPKey(t, testutil.PGPKeyOptions{SigningSubkeys: 1}) })
	p := filepath.Join(t.TempDir(), "key.asc")
	if err := os.WriteFile(p, testKey.ArmoredPrivate, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := signing.Load(signing.KeyOptions{Path: p})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// stanzas splits a Packages file (or apt-ftparchive output) into parsed
// paragraphs.
func stanzas(t testing.TB, data []byte) []paragraph {
	t.Helper()
	var out []paragraph
	for _, chunk := range strings.Split(strings.TrimSpace(string(data)), "\n\n") {
		if strings.TrimSpace(chunk) == "" {
			continue
		}
		p, err := parseControl([]byte(chunk))
		if err != nil {
			t.Fatalf("parse Packages stanza: %v\n%s", err, chunk)
		}
		out = append(out, p)
	}
	return out
}

// releaseEntry is one file line of a Release's SHA256 section.
type releaseEntry struct {
	sha  string
	size int64
	name string
}

func releaseSHA256(t testing.TB, release []byte) []releaseEntry {
	t.Helper()
	var out []releaseEntry
	in := false
	sc := bufio.NewScanner(bytes.NewReader(release))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, " ") {
			in = line == "SHA256:"
			continue
		}
		if in {
			f := strings.Fields(line)
			size, _ := strconv.ParseInt(f[1], 10, 64)
			out = append(out, releaseEntry{sha: f[0], size: size, name: f[2]})
		}
	}
	return out
}

func fileSHA256(t testing.TB, p string) (string, int64) {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v", err)
	}
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:]), int64(len(data))
}

// checkRepo checks, as a client would, that the repository in dir is
// complete and consistent: gpgv accepts InRelease and Release.gpg of every
// suite with the exported keyring, every file a Release names exists (also
// by hash) with that size and hash, every package a Packages names is in
// the pool with its size and hash, and the pool holds nothing else. It
// returns the Packages stanzas per suite/arch.
func checkRepo(t testing.TB, dir string) map[string][]paragraph {
	t.Helper()
	return checkRepoFiles(t, dir, false)
}

// checkRepoFiles is checkRepo; with orphansAllowed, pool files no Packages
// names are tolerated (a killed publish leaves them for the next to delete).
func checkRepoFiles(t testing.TB, dir string, orphansAllowed bool) map[string][]paragraph {
	t.Helper()
	testutil.RequireTool(t, "gpgv", "gpgv")
	keyring := filepath.Join(dir, KeyringName)
	suites, err := os.ReadDir(filepath.Join(dir, distsDir))
	if err != nil {
		t.Fatalf("read dists: %v", err)
	}
	out := map[string][]paragraph{}
	named := map[string]bool{}
	for _, s := range suites {
		sdir := filepath.Join(dir, distsDir, s.Name())
		if o, err := exec.Command("gpgv", "--keyring", keyring, filepath.Join(sdir, "InRelease")).CombinedOutput(); err != nil {
			t.Fatalf("gpgv rejects %s/InRelease: %v\n%s", s.Name(), err, o)
		}
		if o, err := exec.Command("gpgv", "--keyring", keyring, filepath.Join(sdir, "Release.gpg"), filepath.Join(sdir, "Release")).CombinedOutput(); err != nil {
			t.Fatalf("gpgv rejects %s/Release.gpg: %v\n%s", s.Name(), err, o)
		}
		release, err := os.ReadFile(filepath.Join(sdir, "Release"))
		if err != nil {
			t.Fatal(err)
		}
		inRelease, _ := os.ReadFile(filepath.Join(sdir, "InRelease"))
		if !bytes.Contains(inRelease, release) {
			t.Fatalf("%s: InRelease does not carry the same text as Release", s.Name())
		}
		entries := releaseSHA256(t, release)
		if len(entries) == 0 {
			t.Fatalf("%s/Release lists no files:\n%s", s.Name(), release)
		}
		for _, e := range entries {
			for _, p := range []string{e.name, filepath.Join(filepath.Dir(e.name), "by-hash", "SHA256", e.sha)} {
				sum, size := fileSHA256(t, filepath.Join(sdir, p))
				if sum != e.sha || size != e.size {
					t.Fatalf("%s/%s: sha256 %s size %d, Release says %s %d", s.Name(), p, sum, size, e.sha, e.size)
				}
			}
			if filepath.Base(e.name) != "Packages" {
				continue
			}
			data, _ := os.ReadFile(filepath.Join(sdir, e.name))
			key := s.Name() + "/" + filepath.Base(filepath.Dir(e.name))
			for _, st := range stanzas(t, data) {
				fn := st.get("Filename")
				named[fn] = true
				sum, size := fileSHA256(t, filepath.Join(dir, fn))
				if sum != st.get("SHA256") || strconv.FormatInt(size, 10) != st.get("Size") {
					t.Fatalf("%s: pool file %s does not match its Packages entry", key, fn)
				}
				out[key] = append(out[key], st)
			}
		}
	}
	checkYum(t, dir)
	// yum repositories name pool files through hard links in Packages/.
	var yumFiles []os.FileInfo
	if yum, err := filepath.EvalSymlinks(filepath.Join(dir, yumDir)); err == nil {
		filepath.WalkDir(yum, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() && strings.HasSuffix(p, ".rpm") {
				fi, _ := os.Stat(p)
				yumFiles = append(yumFiles, fi)
			}
			return nil
		})
	}
	filepath.WalkDir(filepath.Join(dir, poolDir), func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".rpm") {
			fi, _ := os.Stat(p)
			for _, y := range yumFiles {
				if os.SameFile(fi, y) {
					rel, _ := filepath.Rel(dir, p)
					named[rel] = true
				}
			}
		}
		return nil
	})
	filepath.WalkDir(filepath.Join(dir, poolDir), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			if !named[rel] && !orphansAllowed {
				t.Errorf("stale pool file %s: no Packages names it", rel)
			}
		}
		return nil
	})
	return out
}

// compareWithAptFtparchive checks our Packages stanzas against what
// apt-ftparchive writes for the same pool files, field by field.
func compareWithAptFtparchive(t testing.TB, dir string, ours map[string][]paragraph) {
	t.Helper()
	testutil.RequireTool(t, "apt-ftparchive", "apt-utils")
	cmd := exec.Command("apt-ftparchive", "packages", poolDir)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	ref, err := cmd.Output()
	if err != nil {
		t.Fatalf("apt-ftparchive: %v", err)
	}
	refBy := map[string]paragraph{}
	for _, st := range stanzas(t, ref) {
		refBy[st.get("Filename")] = st
	}
	compareStanzas(t, "apt-ftparchive", refBy, ours)
}

func compareStanzas(t testing.TB, tool string, refBy map[string]paragraph, ours map[string][]paragraph) {
	t.Helper()
	keys := make([]string, 0, len(ours))
	for k := range ours {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, st := range ours[k] {
			fn := st.get("Filename")
			ref, ok := refBy[fn]
			if !ok {
				t.Errorf("%s: %s does not list %s", k, tool, fn)
				continue
			}
			common := 0
			for _, f := range st {
				want, ok := rawField(ref, f.Name)
				if !ok {
					continue
				}
				common++
				if want != f.Value {
					t.Errorf("%s %s field %s: ours %q, %s %q", k, fn, f.Name, f.Value, tool, want)
				}
			}
			for _, f := range ref {
				if _, ok := rawField(st, f.Name); !ok && f.Name != "SHA1" && f.Name != "SHA512" && f.Name != "Description-md5" {
					t.Errorf("%s %s: %s writes field %s, we do not", k, fn, tool, f.Name)
				}
			}
			if common < 10 {
				t.Errorf("%s %s: only %d fields in common with %s", k, fn, common, tool)
			}
		}
	}
}

func rawField(p paragraph, name string) (string, bool) {
	for _, f := range p {
		if strings.EqualFold(f.Name, name) {
			return f.Value, true
		}
	}
	return "", false
}

// treeSnapshot maps every path under dir (links by target) to a content hash.
func treeSnapshot(t testing.TB, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			m[rel] = "-> " + target
		case d.IsDir():
			m[rel] = "dir"
		default:
			sum, _ := fileSHA256(t, p)
			m[rel] = sum
		}
		return nil
	})
	return m
}

// checkCompressed checks that every Packages.gz and Packages.xz of the
// repository decompresses, with apt's own reader (apt-helper cat-file) and
// with gzip/xz, to its Packages.
func checkCompressed(t testing.TB, dir string) {
	t.Helper()
	aptHelper := "/usr/lib/apt/apt-helper"
	if _, err := os.Stat(aptHelper); err != nil {
		t.Skipf("%s not found: install the Debian package apt", aptHelper)
	}
	matches, _ := filepath.Glob(filepath.Join(dir, "dists", "*", "main", "binary-*", "Packages"))
	if len(matches) == 0 {
		t.Fatal("no Packages files")
	}
	for _, plain := range matches {
		want, _ := os.ReadFile(plain)
		for ext, tool := range map[string]string{".gz": "gzip", ".xz": "xz"} {
			for _, cmd := range [][]string{{aptHelper, "cat-file", plain + ext}, {tool, "-dc", plain + ext}} {
				got, err := exec.Command(cmd[0], cmd[1:]...).Output()
				if err != nil {
					t.Fatalf("%s: %v", strings.Join(cmd, " "), err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("%s gives %d bytes, Packages has %d", strings.Join(cmd, " "), len(got), len(want))
				}
			}
		}
	}
}

var (
	repomdData  = regexp.MustCompile(`(?s)<data type="([a-z_]+)">.*?<checksum type="sha256">([0-9a-f]{64})</checksum>.*?<location href="([^"]+)"/>`)
	primaryPkgs = regexp.MustCompile(`(?s)<checksum type="sha256" pkgid="YES">([0-9a-f]{64})</checksum>.*?<location href="([^"]+)"/>`)
)

// checkYum checks every yum repository as dnf would: gpgv accepts
// repomd.xml.asc, every file repomd.xml names has its sha256, every package
// primary.xml names is there with its sha256.
func checkYum(t testing.TB, dir string) {
	t.Helper()
	repomds, _ := filepath.Glob(filepath.Join(dir, yumDir, "*", "*", "repodata", "repomd.xml"))
	for _, repomd := range repomds {
		root := filepath.Dir(filepath.Dir(repomd))
		name, _ := filepath.Rel(dir, root)
		if o, err := exec.Command("gpgv", "--keyring", filepath.Join(dir, KeyringName), repomd+".asc", repomd).CombinedOutput(); err != nil {
			t.Fatalf("gpgv rejects %s/repodata/repomd.xml.asc: %v\n%s", name, err, o)
		}
		data := mustRead(t, repomd)
		found := 0
		for _, m := range repomdData.FindAllStringSubmatch(string(data), -1) {
			found++
			if sum, _ := fileSHA256(t, filepath.Join(root, m[3])); sum != m[2] {
				t.Fatalf("%s: %s does not have the sha256 repomd.xml names", name, m[3])
			}
			if m[1] != "primary" {
				continue
			}
			out, err := exec.Command("gzip", "-dc", filepath.Join(root, m[3])).Output()
			if err != nil {
				t.Fatalf("%s: gunzip primary: %v", name, err)
			}
			for _, p := range primaryPkgs.FindAllStringSubmatch(string(out), -1) {
				if sum, _ := fileSHA256(t, filepath.Join(root, p[2])); sum != p[1] {
					t.Fatalf("%s: package %s does not have the sha256 primary.xml names", name, p[2])
				}
			}
		}
		if found < 3 {
			t.Fatalf("%s: repomd.xml names %d metadata files:\n%s", name, found, data)
		}
	}
}
