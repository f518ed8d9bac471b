package source

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"

	"github.com/criu-forge/criu-forge/internal/testutil"
	"github.com/criu-forge/criu-forge/internal/testutil/upstream"
)

// debianArchive serves a minimal signed Debian archive on loopback: sid's
// InRelease (signed by a throwaway key), main's Sources.gz listing
// criu 4.2.1-1, and the real orig tarball in the pool.
func debianArchive(t *testing.T) (mirror, keyring string, requests *atomic.Int32) {
	t.Helper()
	tarball, err := os.ReadFile(testutil.CRIUTarball(t, "4.2.1"))
	if err != nil {
		t.Fatal(err)
	}
	origSum := sha256.Sum256(tarball)
	var sources bytes.Buffer
	zw := gzip.NewWriter(&sources)
	fmt.Fprintf(zw, "Package: criu\nVersion: 4.2.1-1\nDirectory: pool/main/c/criu\nChecksums-Sha256:\n %x %d criu_4.2.1.orig.tar.xz\n\n", origSum, len(tarball))
	zw.Close()
	sourcesSum := sha256.Sum256(sources.Bytes())
	release := fmt.Sprintf("Origin: Debian\nLabel: Debian\nSuite: unstable\nCodename: sid\nDate: %s\nValid-Until: %s\nComponents: main\nSHA256:\n %x %d main/source/Sources.gz\n",
		time.Now().Add(-time.Hour).UTC().Format(time.RFC1123), time.Now().Add(24*time.Hour).UTC().Format(time.RFC1123), sourcesSum, sources.Len())

	key := testutil.NewPGPKey(t, testutil.PGPKeyOptions{Name: "archive"})
	signers, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(key.ArmoredPrivate))
	if err != nil {
		t.Fatal(err)
	}
	var inRelease bytes.Buffer
	w, err := clearsign.Encode(&inRelease, signers[0].PrivateKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte(release))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	keyring = filepath.Join(t.TempDir(), "archive.asc")
	if err := os.WriteFile(keyring, key.ArmoredPublic, 0o644); err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		"dists/sid/InRelease":                     inRelease.Bytes(),
		"dists/sid/main/source/Sources.gz":        sources.Bytes(),
		"pool/main/c/criu/criu_4.2.1.orig.tar.xz": tarball,
	}
	requests = new(atomic.Int32)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		data, ok := files[strings.TrimPrefix(r.URL.Path, "/debian/")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(data)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/debian/", keyring, requests
}

// debianImportCommit is the import commit of criu 4.2.1-1's orig tarball.
const debianImportCommit = "36872b767e2a8aeea3f832f84326c12f2c63a5da"

// TestFetchDebianSourceAlternative: the git upstream does not answer, the
// Debian archive does; the base is the import of Debian's orig tarball,
// with the same tree as a tarball import of the same file, and offline
// the cache answers.
func TestFetchDebianSourceAlternative(t *testing.T) {
	f := upstream.New(t)
	mirror, keyring, requests := debianArchive(t)
	cache := t.TempDir()
	alts := []Alternative{
		{Git: &GitSpec{URL: filepath.Join(t.TempDir(), "no-such.git"), Ref: "v4.2.1", Commit: f.Commits["v4.2.1"]}},
		{Debian: &DebianSpec{Package: "criu", Version: "4.2.1-1", Suite: "sid", Mirror: mirror, Keyring: keyring}},
	}
	var log bytes.Buffer
	base, err := Fetch(context.Background(), alts, Options{CacheDir: cache, Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	if base.Kind != "debian-source" || base.SHA256 != fileSHA256(t, testutil.CRIUTarball(t, "4.2.1")) || base.Alternative != 1 || len(base.Tried) != 1 || !strings.Contains(base.Tried[0].Error(), "no-such.git") {
		t.Errorf("kind %q alternative %d tried %v", base.Kind, base.Alternative, base.Tried)
	}
	sum := fileSHA256(t, testutil.CRIUTarball(t, "4.2.1"))
	if want := "debian-source criu 4.2.1-1 sid sha256:" + sum; !strings.HasPrefix(base.Describe, want) {
		t.Errorf("describe %q, want prefix %q", base.Describe, want)
	}
	if !strings.Contains(log.String(), "trying the next alternative") {
		t.Errorf("log does not say the first alternative failed:\n%s", log.String())
	}
	commit, err := base.Repo.CommitObject(base.Commit)
	if err != nil {
		t.Fatal(err)
	}
	tarBase, err := Fetch(context.Background(), []Alternative{{Tarball: &TarballSpec{URL: testutil.CRIUTarball(t, "4.2.1"), SHA256: sum}}}, Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if want := "url: debian-archive:pool/main/c/criu/criu_4.2.1.orig.tar.xz\n"; !strings.HasSuffix(commit.Message, want) {
		t.Errorf("import message %q does not end in the mirror-independent %q", commit.Message, want)
	}
	// The import commit depends on nothing of the machine or mirror: this
	// loopback archive and the real one (TestFetchDebianRealArchive) give it.
	if base.Commit.String() != debianImportCommit {
		t.Errorf("import commit %s, want %s", base.Commit, debianImportCommit)
	}
	tarCommit, _ := tarBase.Repo.CommitObject(tarBase.Commit)
	if commit.TreeHash != tarCommit.TreeHash {
		t.Errorf("debian-source tree %s, tarball tree %s", commit.TreeHash, tarCommit.TreeHash)
	}

	before := requests.Load()
	again, err := Fetch(context.Background(), alts[1:], Options{CacheDir: cache, Offline: true})
	if err != nil || again.Commit != base.Commit {
		t.Fatalf("offline from cache: %v", err)
	}
	if requests.Load() != before {
		t.Errorf("offline fetch made %d requests", requests.Load()-before)
	}
}

// TestFetchDebianRealArchive fetches criu 4.2.1-1 from the archive the
// machine's apt configuration names and checks that the import equals the
// import of the fixture tarball (the same release).
func TestFetchDebianRealArchive(t *testing.T) {
	testutil.RequireHeavy(t)
	tarball := testutil.CRIUTarball(t, "4.2.1")
	base, err := Fetch(context.Background(), []Alternative{{Debian: &DebianSpec{Package: "criu", Version: "4.2.1-1", Suite: "sid"}}}, Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	want, err := Fetch(context.Background(), []Alternative{{Tarball: &TarballSpec{URL: tarball, SHA256: fileSHA256(t, tarball)}}}, Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := base.Repo.CommitObject(base.Commit)
	exp, _ := want.Repo.CommitObject(want.Commit)
	if got.TreeHash != exp.TreeHash {
		t.Errorf("archive import tree %s, fixture tarball tree %s", got.TreeHash, exp.TreeHash)
	}
	if base.Commit.String() != debianImportCommit {
		t.Errorf("import commit %s, want %s", base.Commit, debianImportCommit)
	}
	t.Log(base.Describe)
}
