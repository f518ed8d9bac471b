package source

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/memory"

	"github.com/criu-forge/criu-forge/internal/testutil"
	"github.com/criu-forge/criu-forge/internal/testutil/upstream"
)

func fileSHA256(t testing.TB, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// countModes counts the entries of a tree by mode, recursively.
func countModes(t testing.TB, tree *object.Tree) map[filemode.FileMode]int {
	t.Helper()
	counts := map[filemode.FileMode]int{}
	err := tree.Files().ForEach(func(f *object.File) error {
		counts[f.Mode]++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return counts
}

// gitTreeOfTarball is git's own tree id of a tarball's files: extracted by
// tar, added by git with --force (CRIU's .gitignore lists "*.so", and the
// tarball ships such links), written by git write-tree.
func gitTreeOfTarball(t testing.TB, tarball string) (tree, work string) {
	t.Helper()
	work = memTempDir(t)
	testutil.Run(t, work, "tar", "-xf", tarball, "--strip-components=1")
	gitIn(t.(*testing.T), work, "init", "-q")
	gitIn(t.(*testing.T), work, "add", "-A", "--force")
	return gitIn(t.(*testing.T), work, "write-tree"), work
}

// memTempDir is a temporary folder in memory (/dev/shm) when there is one:
// writing CRIU's 2,000 files and git's loose objects to a busy disk costs
// tens of seconds, in memory well under one.
func memTempDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("/dev/shm", "criu-forge-test-")
	if err != nil {
		return t.TempDir()
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// TestImportCRIUTarballs imports the real release tarballs and checks the
// result against git's own tree of the same files: equal tree ids mean
// every path, mode, link target and byte agree.
func TestImportCRIUTarballs(t *testing.T) {
	f := upstream.New(t)
	gitTrees := map[string]string{}
	for _, tt := range []struct {
		version  string
		symlinks int
		goXZ     bool
	}{
		{"4.2.1", 199, false},
		{"4.1.1", 197, false},
		{"4.2.1", 199, true}, // the pure-Go xz decoder gives the same tree
	} {
		name := tt.version
		if tt.goXZ {
			name += " go xz"
		}
		t.Run(name, func(t *testing.T) {
			if tt.goXZ {
				useXZBinary = false
				t.Cleanup(func() { useXZBinary = true })
			}
			tarball := testutil.CRIUTarball(t, tt.version)
			sum := fileSHA256(t, tarball)
			cache := t.TempDir()
			base, err := Fetch(context.Background(), []Alternative{{Tarball: &TarballSpec{URL: tarball, SHA256: sum}}}, Options{CacheDir: cache})
			if err != nil {
				t.Fatal(err)
			}
			commit, err := base.Repo.CommitObject(base.Commit)
			if err != nil {
				t.Fatal(err)
			}
			wantTree, seen := gitTrees[tt.version]
			if !seen {
				var work string
				wantTree, work = gitTreeOfTarball(t, tarball)
				gitTrees[tt.version] = wantTree
				assertFixtureLacksOnlyIgnored(t, f.Dir, "v"+tt.version, base.RepoPath, base.Commit.String(), work)
			}
			if commit.TreeHash.String() != wantTree {
				t.Errorf("import tree %s, git's tree of the extracted tarball %s", commit.TreeHash, wantTree)
			}
			if seen {
				return // the same tarball again, through another decoder
			}
			// git itself must read the imported repository.
			if got := gitIn(t, base.RepoPath, "rev-parse", base.Commit.String()+"^{tree}"); got != commit.TreeHash.String() {
				t.Errorf("git reads the import's tree as %s", got)
			}
			gitIn(t, base.RepoPath, "fsck", "--strict", "--no-dangling")
			tree, _ := commit.Tree()
			if got := countModes(t, tree)[filemode.Symlink]; got != tt.symlinks {
				t.Errorf("%d symbolic links, want %d", got, tt.symlinks)
			}
			wantMsg := "Import criu_" + tt.version + ".orig.tar.xz\n\nsha256: " + sum + "\nurl: " + tarball + "\n"
			if commit.Message != wantMsg || commit.Author.Name != "criu-forge" || commit.Author.Email != "criu-forge@localhost" || commit.Committer != commit.Author {
				t.Errorf("import commit: %+v %+v %q", commit.Author, commit.Committer, commit.Message)
			}
			if !base.Date.Equal(commit.Committer.When) || base.Date.Before(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)) {
				t.Errorf("date %s", base.Date)
			}
			if base.Kind != "tarball" || base.SHA256 != sum || !strings.Contains(base.Describe, "sha256:"+sum) {
				t.Errorf("kind %q describe %q", base.Kind, base.Describe)
			}
			// Same tarball, another cache: the same commit id.
			other, err := Fetch(context.Background(), []Alternative{{Tarball: &TarballSpec{URL: tarball, SHA256: sum}}}, Options{CacheDir: t.TempDir()})
			if err != nil || other.Commit != base.Commit {
				t.Errorf("second import in a new cache: %v, %v; want %s", other.Commit, err, base.Commit)
			}
		})
	}
}

// assertFixtureLacksOnlyIgnored compares the import with the fixture
// upstream's tag. The fixture was committed with "git add -A" without
// --force, so it lacks the tarball's files that CRIU's own .gitignore
// matches (three *.so links in 4.2.1); everything else must be identical.
func assertFixtureLacksOnlyIgnored(t *testing.T, fixture, tag, imports, commit, work string) {
	t.Helper()
	lines := func(dir, rev string) map[string]bool {
		out := map[string]bool{}
		for _, l := range strings.Split(gitIn(t, dir, "ls-tree", "-r", rev), "\n") {
			out[l] = true
		}
		return out
	}
	fix, imp := lines(fixture, tag), lines(imports, commit)
	for l := range fix {
		if !imp[l] {
			t.Errorf("fixture %s has %q, the import does not", tag, l)
		}
	}
	for l := range imp {
		if fix[l] {
			continue
		}
		path := l[strings.Index(l, "\t")+1:]
		cmd := exec.Command("git", "check-ignore", "-q", "--no-index", path)
		cmd.Dir = work
		if cmd.Run() != nil {
			t.Errorf("the import has %q, the fixture %s does not, and .gitignore does not explain it", l, tag)
		}
	}
}

// TestImportTwiceIsALookup: the second import finds refs/imports/<sha256>
// and needs neither the tarball nor the network.
func TestImportTwiceIsALookup(t *testing.T) {
	tarball := testutil.CRIUTarball(t, "4.2.1")
	sum := fileSHA256(t, tarball)
	var gets atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gets.Add(1)
		http.ServeFile(w, r, tarball)
	}))
	defer srv.Close()
	cache := t.TempDir()
	alts := []Alternative{{Tarball: &TarballSpec{URL: srv.URL + "/criu-4.2.1.tar.xz", SHA256: sum}}}
	first, err := Fetch(context.Background(), alts, Options{CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(tarballPath(cache, sum)); err != nil {
		t.Fatal(err)
	}
	srv.Close()
	start := time.Now()
	second, err := Fetch(context.Background(), alts, Options{CacheDir: cache, Offline: true})
	if err != nil || second.Commit != first.Commit {
		t.Fatalf("second import: %v, %v", second, err)
	}
	if gets.Load() != 1 {
		t.Errorf("%d downloads, want 1", gets.Load())
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("second import took %s: not a lookup", d)
	}
}

func TestTarballDownload(t *testing.T) {
	tarball := testutil.CRIUTarball(t, "4.2.1")
	sum := fileSHA256(t, tarball)
	good, err := os.ReadFile(tarball)
	if err != nil {
		t.Fatal(err)
	}
	tampered := bytes.Clone(good)
	tampered[len(tampered)/2] ^= 1
	var body atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing.tar.xz" {
			http.NotFound(w, r)
			return
		}
		w.Write(body.Load().([]byte))
	}))
	defer srv.Close()
	url := srv.URL + "/criu_4.2.1.orig.tar.xz"
	cache := t.TempDir()
	alts := []Alternative{{Tarball: &TarballSpec{URL: url, SHA256: sum}}}

	body.Store(tampered)
	_, err = Fetch(context.Background(), alts, Options{CacheDir: cache})
	if !errors.Is(err, ErrChecksum) || !strings.Contains(err.Error(), "expected "+sum) {
		t.Fatalf("tampered download: %v", err)
	}
	assertNoCachedTarballs(t, cache)

	_, err = Fetch(context.Background(), []Alternative{{Tarball: &TarballSpec{URL: srv.URL + "/missing.tar.xz", SHA256: sum}}}, Options{CacheDir: cache})
	if err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("missing file: %v", err)
	}
	_, err = Fetch(context.Background(), alts, Options{CacheDir: cache, Offline: true})
	if err == nil || !strings.Contains(err.Error(), url) || !strings.Contains(err.Error(), offlineHint) {
		t.Errorf("offline, not cached: %v", err)
	}
	assertNoCachedTarballs(t, cache)

	body.Store(good)
	if _, err := Fetch(context.Background(), alts, Options{CacheDir: cache}); err != nil {
		t.Fatal(err)
	}
	if got := fileSHA256(t, tarballPath(cache, sum)); got != sum {
		t.Errorf("cached tarball sha256 %s", got)
	}
	_, err = Fetch(context.Background(), []Alternative{{Tarball: &TarballSpec{URL: url, SHA256: "abc"}}}, Options{CacheDir: cache})
	if err == nil || !strings.Contains(err.Error(), "64 hex digits") {
		t.Errorf("bad sha256: %v", err)
	}
}

// TestCachedTarballChanged: a cached tarball altered on disk is refused
// when imported, and removed.
func TestCachedTarballChanged(t *testing.T) {
	tarball := testutil.CRIUTarball(t, "4.2.1")
	sum := fileSHA256(t, tarball)
	cache := t.TempDir()
	data, _ := os.ReadFile(tarball)
	data[len(data)-100] ^= 1
	if err := os.MkdirAll(filepath.Join(cache, "tarballs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tarballPath(cache, sum), data, 0o444); err != nil {
		t.Fatal(err)
	}
	_, err := Fetch(context.Background(), []Alternative{{Tarball: &TarballSpec{URL: "https://upstream.invalid/x.tar.xz", SHA256: sum}}}, Options{CacheDir: cache, Offline: true})
	if !errors.Is(err, ErrChecksum) {
		t.Fatalf("changed cache file: %v", err)
	}
	assertNoCachedTarballs(t, cache)
	if b, _ := lookupImport(cache, sum); b != nil {
		t.Error("a refused tarball was imported")
	}
}

// TestCachedTarballReused: a verified tarball already in the cache (as
// debsrc leaves one) is imported without any network, even offline.
func TestCachedTarballReused(t *testing.T) {
	tarball := testutil.CRIUTarball(t, "4.2.1")
	sum := fileSHA256(t, tarball)
	cache := t.TempDir()
	data, _ := os.ReadFile(tarball)
	if err := os.MkdirAll(filepath.Join(cache, "tarballs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tarballPath(cache, sum), data, 0o444); err != nil {
		t.Fatal(err)
	}
	base, err := Fetch(context.Background(), []Alternative{{Tarball: &TarballSpec{URL: "https://upstream.invalid/criu-4.2.1.tar.xz", SHA256: sum}}}, Options{CacheDir: cache, Offline: true})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(base.Describe, "https://upstream.invalid/criu-4.2.1.tar.xz") {
		t.Errorf("describe %q", base.Describe)
	}
}

func assertNoCachedTarballs(t *testing.T, cache string) {
	t.Helper()
	entries, _ := os.ReadDir(filepath.Join(cache, "tarballs"))
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".lock") {
			t.Errorf("cache keeps %s", e.Name())
		}
	}
}

// entry is one member of a tar built in a test.
type entry struct {
	name, body, link string
	typ              byte
	mode             int64
}

func makeTar(t testing.TB, entries []entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		mode := e.mode
		if mode == 0 {
			mode = 0o644
		}
		hdr := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: mode, Linkname: e.link, Size: int64(len(e.body)),
			ModTime: time.Date(2025, 7, 29, 12, 0, 0, 0, time.UTC), Format: tar.FormatPAX}
		if e.typ != tar.TypeReg {
			hdr.Size = 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if hdr.Size > 0 {
			tw.Write([]byte(e.body))
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func importBytes(t testing.TB, data []byte) (*object.Tree, string, error) {
	t.Helper()
	store := memory.NewStorage()
	var warn bytes.Buffer
	h, _, err := importTarTree(bytes.NewReader(data), store, &warn)
	if err != nil {
		return nil, warn.String(), err
	}
	tree, err := object.GetTree(store, h)
	if err != nil {
		t.Fatal(err)
	}
	return tree, warn.String(), nil
}

func TestImportTarSafety(t *testing.T) {
	reg := func(name, body string) entry { return entry{name: name, body: body, typ: tar.TypeReg} }
	tests := []struct {
		name    string
		entries []entry
		err     string            // refused with this text
		files   map[string]string // else: these paths with "mode:content"
		warn    string
	}{
		{name: "absolute path", entries: []entry{reg("p/a", "x"), reg("/etc/passwd", "x")}, err: `"/etc/passwd" is an absolute path`},
		{name: "dot-dot escape", entries: []entry{reg("p/a", "x"), reg("p/../../evil", "x")}, err: "climbs out of the tree"},
		{name: "file through a link", entries: []entry{
			{name: "p/l", link: "/etc", typ: tar.TypeSymlink}, reg("p/l/passwd", "x"),
		}, err: "p/l/passwd goes through p/l, which is a symbolic link"},
		{name: "hard link outside", entries: []entry{reg("p/a", "x"), {name: "p/h", link: "../etc/passwd", typ: tar.TypeLink}}, err: "climbs out"},
		{name: "hard link absolute", entries: []entry{reg("p/a", "x"), {name: "p/h", link: "/etc/passwd", typ: tar.TypeLink}}, err: "absolute"},
		{name: "hard link to nothing", entries: []entry{reg("p/a", "x"), {name: "p/h", link: "p/zzz", typ: tar.TypeLink}}, err: "not an earlier file"},
		{name: "hard link to a folder", entries: []entry{reg("p/d/a", "x"), {name: "p/h", link: "p/d", typ: tar.TypeLink}}, err: "not an earlier file"},
		{name: ".git inside", entries: []entry{reg("p/.git/config", "x")}, err: ".git entry"},
		{name: ".GIT inside", entries: []entry{reg("p/x/.GIT/hooks/post-checkout", "x")}, err: ".git entry"},
		{name: "symlinked .gitmodules", entries: []entry{reg("p/a", "x"), {name: "p/sub/.GitModules", link: "/etc/passwd", typ: tar.TypeSymlink}}, err: "git refuses"},
		{name: "folder then file", entries: []entry{reg("p/d/a", "x"), reg("p/d", "x")}, err: "both a folder and a file"},
		{name: "empty archive", entries: nil, err: "no files"},
		{name: "only folders", entries: []entry{{name: "p/", typ: tar.TypeDir}, {name: "p/q/", typ: tar.TypeDir}}, err: "only folders"},
		{name: "links stay links", entries: []entry{
			{name: "p/", typ: tar.TypeDir},
			{name: "p/self", link: ".", typ: tar.TypeSymlink},
			{name: "p/dangling", link: "../../nowhere/lib.so", typ: tar.TypeSymlink},
			{name: "p/abs", link: "/etc/passwd", typ: tar.TypeSymlink},
			{name: "p/run.sh", body: "#!/bin/sh\n", typ: tar.TypeReg, mode: 0o755},
			{name: "p/hard", link: "p/run.sh", typ: tar.TypeLink},
			{name: "p/empty/", typ: tar.TypeDir},
		}, files: map[string]string{
			"self": "120000:.", "dangling": "120000:../../nowhere/lib.so", "abs": "120000:/etc/passwd",
			"run.sh": "100755:#!/bin/sh\n", "hard": "100755:#!/bin/sh\n",
		}},
		{name: "device nodes and fifos skipped", entries: []entry{
			reg("p/a", "x"), {name: "p/null", typ: tar.TypeChar}, {name: "p/sda", typ: tar.TypeBlock}, {name: "p/fifo", typ: tar.TypeFifo},
		}, files: map[string]string{"a": "100644:x"}, warn: "skipping p/fifo"},
		{name: "no single top folder", entries: []entry{reg("a", "1"), reg("./b/c", "2")}, files: map[string]string{"a": "100644:1", "b/c": "100644:2"}},
		{name: "later entry wins", entries: []entry{reg("p/a", "1"), reg("p/b", "2"), reg("p/a", "3")}, files: map[string]string{"a": "100644:3", "b": "100644:2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tree, warn, err := importBytes(t, makeTar(t, tt.entries))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v; want it to contain %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			tree.Files().ForEach(func(f *object.File) error {
				body, _ := f.Contents()
				got[f.Name] = strings.TrimPrefix(f.Mode.String(), "0") + ":" + body
				return nil
			})
			if len(got) != len(tt.files) {
				t.Errorf("files %v, want %v", got, tt.files)
			}
			for name, want := range tt.files {
				if got[name] != want {
					t.Errorf("%s = %q, want %q", name, got[name], want)
				}
			}
			if !strings.Contains(warn, tt.warn) {
				t.Errorf("warnings %q lack %q", warn, tt.warn)
			}
		})
	}
}

// TestDecompression imports one small tar in every supported compression;
// each must give the same tree as git gives for the extracted files.
func TestDecompression(t *testing.T) {
	plain := makeTar(t, []entry{
		{name: "pkg-1/", typ: tar.TypeDir},
		{name: "pkg-1/README", body: "hello\n", typ: tar.TypeReg},
		{name: "pkg-1/bin/tool", body: "#!/bin/sh\n", typ: tar.TypeReg, mode: 0o755},
		{name: "pkg-1/link", link: "README", typ: tar.TypeSymlink},
	})
	dir := t.TempDir()
	tarPath := filepath.Join(dir, "pkg.tar")
	if err := os.WriteFile(tarPath, plain, 0o644); err != nil {
		t.Fatal(err)
	}
	// git's tree of the same files, extracted by tar.
	work := filepath.Join(dir, "work")
	os.Mkdir(work, 0o755)
	testutil.Run(t, work, "tar", "-xf", tarPath, "--strip-components=1")
	gitIn(t, work, "init", "-q")
	gitIn(t, work, "add", "-A")
	wantTree := gitIn(t, work, "write-tree")

	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(plain)
	zw.Close()
	compress := func(tool, pkg string, args ...string) func(t *testing.T) []byte {
		return func(t *testing.T) []byte {
			testutil.RequireTool(t, tool, pkg)
			cmd := exec.Command(tool, args...)
			cmd.Stdin = bytes.NewReader(plain)
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("%s: %v", tool, err)
			}
			return out
		}
	}
	for _, tt := range []struct {
		name  string
		data  func(t *testing.T) []byte
		goXZ  bool
		wants string
	}{
		{name: "plain", data: func(*testing.T) []byte { return plain }},
		{name: "gzip", data: func(*testing.T) []byte { return gz.Bytes() }},
		{name: "bzip2", data: compress("bzip2", "bzip2", "-c")},
		{name: "zstd", data: compress("zstd", "zstd", "-c", "-q")},
		{name: "xz binary", data: compress("xz", "xz-utils", "-c")},
		{name: "xz go", data: compress("xz", "xz-utils", "-c"), goXZ: true},
		{name: "xz corrupt", data: func(t *testing.T) []byte {
			d := compress("xz", "xz-utils", "-c")(t)
			return d[:len(d)-20]
		}, wants: "xz"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			useXZBinary = !tt.goXZ
			defer func() { useXZBinary = true }()
			data := tt.data(t)
			path := filepath.Join(t.TempDir(), "pkg-1.tar.any")
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(data)
			base, err := Fetch(context.Background(), []Alternative{{Tarball: &TarballSpec{URL: "file://" + path, SHA256: hex.EncodeToString(sum[:])}}}, Options{CacheDir: t.TempDir()})
			if tt.wants != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wants) {
					t.Fatalf("err = %v, want %q", err, tt.wants)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			c, _ := base.Repo.CommitObject(base.Commit)
			if c.TreeHash.String() != wantTree {
				t.Errorf("tree %s, git's %s", c.TreeHash, wantTree)
			}
		})
	}
}

func TestImportHashMatchesGitForBlobs(t *testing.T) {
	store := memory.NewStorage()
	ti := &treeImporter{store: store}
	h, err := ti.blob(strings.NewReader("hello\n"), 6)
	if err != nil || h != plumbing.NewHash("ce013625030ba8dba906f756967f9e9ca394464a") {
		t.Errorf("blob id %s, %v", h, err)
	}
}

// TestImportConcurrent: three imports of one tarball into one cache at once
// give one commit and one pack; the locks serialize them.
func TestImportConcurrent(t *testing.T) {
	tarball := testutil.CRIUTarball(t, "4.2.1")
	sum := fileSHA256(t, tarball)
	cache := t.TempDir()
	type result struct {
		commit plumbing.Hash
		err    error
	}
	results := make(chan result, 3)
	for range 3 {
		go func() {
			b, err := Fetch(context.Background(), []Alternative{{Tarball: &TarballSpec{URL: tarball, SHA256: sum}}}, Options{CacheDir: cache})
			if err != nil {
				results <- result{err: err}
				return
			}
			results <- result{commit: b.Commit}
		}()
	}
	var first plumbing.Hash
	for range 3 {
		r := <-results
		if r.err != nil {
			t.Fatal(r.err)
		}
		if first.IsZero() {
			first = r.commit
		}
		if r.commit != first {
			t.Errorf("commits %s and %s", first, r.commit)
		}
	}
	if got := packs(t, importsPath(cache)); len(got) != 1 {
		t.Errorf("imports.git has %d packs, want 1", len(got))
	}
}
