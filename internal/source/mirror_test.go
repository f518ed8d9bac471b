package source

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/criu-forge/criu-forge/internal/testutil"
	"github.com/criu-forge/criu-forge/internal/testutil/upstream"
)

// gitIn runs git in dir with a fixed identity and no user configuration.
func gitIn(t *testing.T, dir string, args ...string) string {
	t.Helper()
	base := []string{"-c", "user.name=Test", "-c", "user.email=test@example.org", "-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false"}
	return strings.TrimSpace(testutil.Run(t, dir, "git", append(base, args...)...))
}

// upstreamCommit adds a commit changing one file on criu-dev of the bare
// repository dir, tags it (annotated) and returns its id. The clone has no
// working tree: checking out CRIU's 2,000 files would only cost time.
func upstreamCommit(t *testing.T, dir, file, content, tag string) string {
	t.Helper()
	wt := filepath.Join(t.TempDir(), "w")
	gitIn(t, "", "clone", "-q", "--no-checkout", "--shared", "-b", "criu-dev", dir, wt)
	gitIn(t, wt, "reset", "-q")
	if err := os.WriteFile(filepath.Join(wt, file), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	gitIn(t, wt, "add", file)
	gitIn(t, wt, "commit", "-q", "-m", "change "+file)
	gitIn(t, wt, "tag", "-a", tag, "-m", tag)
	gitIn(t, wt, "push", "-q", "origin", "HEAD:criu-dev", tag)
	return gitIn(t, wt, "rev-parse", "HEAD")
}

// packs lists the pack files of a bare repository.
func packs(t *testing.T, repo string) map[string]int64 {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(repo, "objects", "pack", "*.pack"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, n := range names {
		fi, err := os.Stat(n)
		if err != nil {
			t.Fatal(err)
		}
		out[n] = fi.Size()
	}
	return out
}

func update(t *testing.T, m *Mirror) {
	t.Helper()
	if err := m.Update(context.Background()); err != nil {
		t.Fatalf("Update: %v", err)
	}
}

func TestMirrorClone(t *testing.T) {
	f := upstream.New(t)
	httpURL := f.Serve(t)
	for _, tt := range []struct{ name, url string }{
		{"local path", f.Dir},
		{"file URL", "file://" + f.Dir},
		{"http", httpURL},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cache := t.TempDir()
			m, err := OpenMirror(cache, tt.url, false)
			if err != nil {
				t.Fatal(err)
			}
			if m.Repo() != nil {
				t.Fatal("a mirror that was never cloned is open")
			}
			update(t, m)
			if dir, base := filepath.Split(m.Path()); dir != filepath.Join(cache, "git")+"/" || !strings.HasSuffix(base, "-criu.git") || len(base) != 16+len("-criu.git") {
				t.Errorf("mirror path %s, want %s/git/<16 hex>-criu.git", m.Path(), cache)
			}
			for tag, want := range f.Commits {
				got, err := m.Resolve(tag)
				if err != nil || got.String() != want {
					t.Errorf("Resolve(%s) = %s, %v; want %s", tag, got, err, want)
				}
			}
			leftovers, _ := filepath.Glob(filepath.Join(cache, "git", ".*tmp-*"))
			if len(leftovers) != 0 {
				t.Errorf("clone left temporary folders: %v", leftovers)
			}
			// A second Mirror of the same URL opens the clone.
			again, err := OpenMirror(cache, tt.url, true)
			if err != nil || again.Repo() == nil {
				t.Fatalf("reopen offline: %v", err)
			}
		})
	}
}

// TestMirrorUpdateFetchesOnlyNew makes a commit and a tag upstream after the
// first clone and checks that the second Update brings them in one small pack.
func TestMirrorUpdateFetchesOnlyNew(t *testing.T) {
	f := upstream.New(t)
	url := f.Serve(t)
	m, err := OpenMirror(t.TempDir(), url, false)
	if err != nil {
		t.Fatal(err)
	}
	update(t, m)
	first := packs(t, m.Path())
	var firstSize int64
	for _, s := range first {
		firstSize += s
	}

	update(t, m) // nothing new upstream: no new pack
	if got := packs(t, m.Path()); len(got) != len(first) {
		t.Fatalf("an Update with nothing new wrote a pack: %v -> %v", first, got)
	}

	newCommit := upstreamCommit(t, f.Dir, "NEWS", "a new upstream change\n", "v4.2.2")

	update(t, m)
	got, err := m.Resolve("v4.2.2")
	if err != nil || got.String() != newCommit {
		t.Fatalf("Resolve(v4.2.2) = %s, %v; want %s", got, err, newCommit)
	}
	if got, _ := m.Resolve("criu-dev"); got.String() != newCommit {
		t.Errorf("branch criu-dev = %s, want %s", got, newCommit)
	}
	after := packs(t, m.Path())
	var added []int64
	for name, size := range after {
		if _, ok := first[name]; !ok {
			added = append(added, size)
		}
	}
	// The new pack holds the commit, its tree path, one blob and the tag:
	// a few hundred bytes, against megabytes for the clone.
	if len(added) != 1 || added[0] > 16<<10 || firstSize < 1<<20 {
		t.Errorf("second fetch added packs of %v bytes (clone: %d bytes); want one small pack", added, firstSize)
	}
}

func TestMirrorFetchPulls(t *testing.T) {
	f := upstream.New(t)
	m, err := OpenMirror(t.TempDir(), f.Serve(t), false)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	heads, err := m.FetchPulls(ctx, 101, 102, 103) // clones first
	if err != nil {
		t.Fatal(err)
	}
	for n, pr := range f.PRs {
		if heads[n].String() != pr.Head {
			t.Errorf("PR %d head %s, want %s", n, heads[n], pr.Head)
		}
		if got, err := m.Resolve(pullRef(n)); err != nil || got.String() != pr.Head {
			t.Errorf("Resolve(%s) = %s, %v", pullRef(n), got, err)
		}
	}
	moved := f.ForcePush(t, 102)
	heads, err = m.FetchPulls(ctx, 102)
	if err != nil || heads[102].String() != moved {
		t.Fatalf("after force-push: %v, %v; want %s", heads, err, moved)
	}
	if _, err := m.FetchPulls(ctx, 999); err == nil || !strings.Contains(err.Error(), "999") {
		t.Errorf("unknown PR: %v", err)
	}
	off, err := OpenMirror(filepath.Dir(filepath.Dir(m.Path())), f.Dir, true)
	if err == nil {
		t.Errorf("offline mirror of another URL opened: %s", off.Path())
	}
}

func TestMirrorResolve(t *testing.T) {
	f := upstream.New(t)
	m, err := OpenMirror(t.TempDir(), f.Dir, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.FetchPulls(context.Background(), 101); err != nil {
		t.Fatal(err)
	}
	v421 := f.Commits["v4.2.1"]
	blob := gitIn(t, f.Dir, "rev-parse", "v4.2.1:Makefile")
	tests := []struct {
		ref, want, err string
	}{
		{ref: "v4.2.1", want: v421},
		{ref: "refs/tags/v4.2.1", want: v421},
		{ref: f.TagObjects["v4.2.1"], want: v421}, // a tag object id is peeled
		{ref: v421, want: v421},
		{ref: v421[:9], want: v421},
		{ref: v421[:7] + "X", err: "not found"},
		{ref: "criu-dev", want: v421},
		{ref: "refs/heads/criu-dev", want: v421},
		{ref: "refs/pull/101/head", want: f.PRs[101].Head},
		{ref: "v9.9", err: "not found"},
		{ref: blob, err: "names a blob"},
		{ref: "", err: "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			got, err := m.Resolve(tt.ref)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("Resolve(%q) = %s, %v; want error containing %q", tt.ref, got, err, tt.err)
				}
				return
			}
			if err != nil || got.String() != tt.want {
				t.Fatalf("Resolve(%q) = %s, %v; want %s", tt.ref, got, err, tt.want)
			}
		})
	}
}

func TestMirrorEnsureCommits(t *testing.T) {
	f := upstream.New(t)
	url := f.Serve(t)
	cache := t.TempDir()
	m, err := OpenMirror(cache, url, false)
	if err != nil {
		t.Fatal(err)
	}
	update(t, m)
	// A PR commit is reachable only from refs/pull/102/head, which Update
	// does not fetch: EnsureCommits must fetch it by id.
	pr := f.PRs[102].Commits[0]
	if _, err := m.Resolve(pr); err == nil {
		t.Fatal("PR commit already present: the test proves nothing")
	}
	off, err := OpenMirror(cache, url, true)
	if err != nil {
		t.Fatal(err)
	}
	err = off.EnsureCommits(context.Background(), pr)
	if err == nil || !strings.Contains(err.Error(), pr) || !strings.Contains(err.Error(), m.Path()) || !strings.Contains(err.Error(), offlineHint) {
		t.Errorf("offline EnsureCommits: %v", err)
	}
	if err := m.EnsureCommits(context.Background(), pr, f.Commits["v4.1.1"][:10]); err != nil {
		t.Fatal(err)
	}
	if got, err := m.Resolve(pr); err != nil || got.String() != pr {
		t.Errorf("after EnsureCommits: %s, %v", got, err)
	}
	if err := m.EnsureCommits(context.Background(), "0123456789abcdef0123456789abcdef01234567"); err == nil {
		t.Error("a commit upstream does not have was reported present")
	}
	if err := m.EnsureCommits(context.Background(), "abcdef1"); err == nil || !strings.Contains(err.Error(), "full 40-character id") {
		t.Errorf("abbreviated missing id: %v", err)
	}
	// A server that refuses wants by id gets a message saying what to do.
	gitIn(t, f.Dir, "config", "uploadpack.allowReachableSHA1InWant", "false")
	other := f.PRs[101].Commits[0]
	if err := m.EnsureCommits(context.Background(), other); err == nil || !strings.Contains(err.Error(), "does not allow fetching commits by id") {
		t.Errorf("server without allowReachableSHA1InWant: %v", err)
	}
}

// TestMirrorMovedTag moves a release tag upstream: the mirror follows, keeps
// the old commit, says so, and a recipe pinning the old commit fails clearly.
func TestMirrorMovedTag(t *testing.T) {
	f := upstream.New(t)
	cache := t.TempDir()
	var log bytes.Buffer
	m, err := OpenMirror(cache, f.Dir, false)
	if err != nil {
		t.Fatal(err)
	}
	m.SetLog(&log)
	update(t, m)
	old := f.Commits["v4.2.1"]
	gitIn(t, f.Dir, "tag", "-f", "-a", "v4.2.1", "-m", "moved", f.Commits["v4.1.1"])
	gitIn(t, f.Dir, "tag", "-d", "v4.1.1")
	update(t, m)
	if got, _ := m.Resolve("v4.2.1"); got.String() != f.Commits["v4.1.1"] {
		t.Errorf("moved tag resolves to %s", got)
	}
	if _, err := m.Resolve("v4.1.1"); err == nil {
		t.Error("a tag deleted upstream is still in the mirror")
	}
	for _, want := range []string{"tag v4.2.1 moved upstream", "tag v4.1.1 was deleted upstream"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, log.String())
		}
	}
	ref, err := m.Repo().Reference(plumbing.ReferenceName(movedRefPrefix+"v4.2.1/"+f.TagObjects["v4.2.1"]), true)
	if err != nil {
		t.Fatalf("old tag not kept: %v", err)
	}
	if c, _ := m.Resolve(ref.Name().String()); c.String() != old {
		t.Errorf("kept ref peels to %s, want %s", c, old)
	}
	_, err = Fetch(context.Background(), []Alternative{{Git: &GitSpec{URL: f.Dir, Ref: "v4.2.1", Commit: old}}}, Options{CacheDir: cache})
	if err == nil || !strings.Contains(err.Error(), old) || !strings.Contains(err.Error(), f.Commits["v4.1.1"]) || !strings.Contains(err.Error(), "tag moved upstream or the recipe is wrong") {
		t.Errorf("expected-commit mismatch: %v", err)
	}
}

func TestMirrorOffline(t *testing.T) {
	f := upstream.New(t)
	cache := t.TempDir()
	spec := GitSpec{URL: f.Dir, Ref: "v4.2.1", Commit: f.Commits["v4.2.1"]}
	_, err := Fetch(context.Background(), []Alternative{{Git: &spec}}, Options{CacheDir: cache, Offline: true})
	if err == nil || !strings.Contains(err.Error(), "no mirror of "+f.Dir) || !strings.Contains(err.Error(), offlineHint) {
		t.Fatalf("offline without cache: %v", err)
	}
	if entries, _ := os.ReadDir(cache); len(entries) != 0 {
		t.Errorf("offline failure wrote to the cache: %v", entries)
	}
	if _, err := Fetch(context.Background(), []Alternative{{Git: &spec}}, Options{CacheDir: cache}); err != nil {
		t.Fatal(err)
	}
	// The upstream vanishes: offline still answers from the cache.
	if err := os.Rename(f.Dir, f.Dir+".gone"); err != nil {
		t.Fatal(err)
	}
	base, err := Fetch(context.Background(), []Alternative{{Git: &spec}}, Options{CacheDir: cache, Offline: true})
	if err != nil || base.Commit.String() != f.Commits["v4.2.1"] {
		t.Fatalf("offline with cache: %v", err)
	}
	// So does a pinned commit online: it needs no network.
	if _, err := Fetch(context.Background(), []Alternative{{Git: &spec}}, Options{CacheDir: cache}); err != nil {
		t.Fatalf("pinned commit in cache, upstream gone: %v", err)
	}
	for _, ref := range []string{"v9.9", "refs/pull/101/head"} {
		_, err = Fetch(context.Background(), []Alternative{{Git: &GitSpec{URL: f.Dir, Ref: ref}}}, Options{CacheDir: cache, Offline: true})
		if err == nil || !strings.Contains(err.Error(), ref) || !strings.Contains(err.Error(), offlineHint) {
			t.Errorf("offline, missing %s: %v", ref, err)
		}
	}
}

// TestMirrorInterruptedClone: a clone cut off in the middle of the pack
// leaves nothing at the mirror's path, and the next Update cleans up what
// a killed process left and clones.
func TestMirrorInterruptedClone(t *testing.T) {
	f := upstream.New(t)
	target, err := url.Parse(f.Serve(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// A proxy that cancels the clone once pack data has started to flow.
	proxy := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: target.Scheme, Host: target.Host})
	proxy.ModifyResponse = func(resp *http.Response) error {
		if strings.HasSuffix(resp.Request.URL.Path, "/git-upload-pack") {
			resp.Body = &cancelAfter{ReadCloser: resp.Body, n: 64 << 10, cancel: cancel}
		}
		return nil
	}
	srv := httptest.NewServer(proxy)
	defer srv.Close()
	upstreamURL := srv.URL + target.Path

	cache := t.TempDir()
	m, err := OpenMirror(cache, upstreamURL, false)
	if err != nil {
		t.Fatal(err)
	}
	// What a killed process leaves: a half-written temporary clone.
	stale := filepath.Join(filepath.Dir(m.Path()), "."+filepath.Base(m.Path())+".tmp-killed")
	if err := os.MkdirAll(filepath.Join(stale, "objects"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := m.Update(ctx); err == nil {
		t.Fatal("Update cancelled in the middle of the pack succeeded")
	}
	if _, err := os.Stat(m.Path()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("an interrupted clone left %s", m.Path())
	}
	if _, err := OpenMirror(cache, upstreamURL, true); err == nil {
		t.Error("offline open found a mirror after an interrupted clone")
	}
	if err := m.Update(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, err := m.Resolve("v4.2.1"); err != nil || got.String() != f.Commits["v4.2.1"] {
		t.Errorf("after a clean clone: %s, %v", got, err)
	}
	leftovers, _ := filepath.Glob(filepath.Join(cache, "git", ".*tmp-*"))
	if len(leftovers) != 0 {
		t.Errorf("temporary clones left: %v", leftovers)
	}
}

// cancelAfter cancels a context once n bytes went through.
type cancelAfter struct {
	io.ReadCloser
	n      int
	cancel func()
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	if c.n -= n; c.n <= 0 {
		c.cancel()
	}
	return n, err
}

// TestMirrorConcurrentUpdates: two processes' worth of Updates of one URL
// at once give one complete mirror; the lock serializes them.
func TestMirrorConcurrentUpdates(t *testing.T) {
	f := upstream.New(t)
	cache := t.TempDir()
	errs := make(chan error, 3)
	for range 3 {
		go func() {
			m, err := OpenMirror(cache, f.Dir, false)
			if err == nil {
				err = m.Update(context.Background())
			}
			if err == nil {
				_, err = m.Resolve("v4.2.1")
			}
			errs <- err
		}()
	}
	for range 3 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	entries, _ := os.ReadDir(filepath.Join(cache, "git"))
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if len(names) != 2 { // the mirror and its lock file
		t.Errorf("cache/git holds %v", names)
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://user:secret@example.org/criu.git": "https://example.org/criu.git",
		"https://example.org/criu.git":             "https://example.org/criu.git",
		"/srv/git/criu.git":                        "/srv/git/criu.git",
	} {
		if got := redactURL(in); got != want {
			t.Errorf("redactURL(%q) = %q, want %q", in, got, want)
		}
	}
	if MirrorPath("/c", "https://user:secret@example.org/criu.git") != MirrorPath("/c", "https://example.org/criu.git") {
		t.Error("credentials change the mirror path")
	}
}

// TestNoSecretInErrors: a token in the upstream URL appears in no error,
// log line or path.
func TestNoSecretInErrors(t *testing.T) {
	var log bytes.Buffer
	cache := t.TempDir()
	for _, alt := range []Alternative{
		{Git: &GitSpec{URL: "http://user:s3cret-token@127.0.0.1:1/criu.git", Ref: "v4.2.1"}},
		{Tarball: &TarballSpec{URL: "http://user:s3cret-token@127.0.0.1:1/criu.tar.xz", SHA256: strings.Repeat("a", 64)}},
	} {
		_, err := Fetch(context.Background(), []Alternative{alt}, Options{CacheDir: cache, Log: &log})
		if err == nil {
			t.Fatal("a dead upstream answered")
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("error shows the token: %v", err)
		}
	}
	if strings.Contains(log.String(), "s3cret") {
		t.Errorf("log shows the token: %s", log.String())
	}
	filepath.Walk(cache, func(p string, _ os.FileInfo, _ error) error {
		if strings.Contains(p, "s3cret") {
			t.Errorf("cache path shows the token: %s", p)
		}
		return nil
	})
}
