package repo

import (
	"bytes"
	"context"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/criu-forge/criu-forge/internal/testutil"
)

func TestSuiteForVersion(t *testing.T) {
	tests := []struct{ version, suite, err string }{
		{"4.2.1+forge3~deb12u1", "bookworm", ""},
		{"1:4.2.1+forge3~deb13u2", "trixie", ""},
		{"4.2.1-1~ubu2404.1", "noble", ""},
		{"4.2.1+forge1~ubu2204", "jammy", ""},
		{"4.2.1+deb12u1", "bookworm", ""},
		{"4.2.1-1", "", "no distro tag"},
		{"4.2.1~deb99u1", "", "unknown distro tag deb99"},
	}
	for _, tt := range tests {
		got, err := SuiteForVersion(tt.version)
		if got != tt.suite || (err == nil) != (tt.err == "") || (err != nil && !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("SuiteForVersion(%q) = %q, %v; want %q, error containing %q", tt.version, got, err, tt.suite, tt.err)
		}
	}
}

func publish(t testing.TB, dir string, opts PublishOptions, inputs ...Input) *Report {
	t.Helper()
	opts.Dir = dir
	opts.Packages = inputs
	if opts.Signer == nil {
		opts.Signer = newSigner(t)
	}
	rep, err := Publish(context.Background(), opts)
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	return rep
}

func paths(ps ...string) []Input {
	var in []Input
	for _, p := range ps {
		in = append(in, Input{Path: p})
	}
	return in
}

func TestPublishSuitesSignedAndLikeAptFtparchive(t *testing.T) {
	debs := t.TempDir()
	dir := t.TempDir()
	in := paths(
		makeDeb(t, debs, testDeb{Name: "criu", Version: "4.2.1+forge3~deb12u1", Depends: []string{"libc6 (>= 2.34)", "libprotobuf-c1"}}),
		makeDeb(t, debs, testDeb{Name: "criu", Version: "4.2.1+forge3~deb12u1", Arch: "arm64"}),
		makeDeb(t, debs, testDeb{Name: "criu-doc", Version: "4.2.1+forge3~deb12u1", Arch: "all"}),
		makeDeb(t, debs, testDeb{Name: "criu", Version: "4.2.1+forge3~ubu2404", Depends: []string{"libc6"}}),
		makeDeb(t, debs, testDeb{Name: "libcriu2", Version: "4.2.1+forge3~ubu2404"}),
	)
	in = append(in, Input{Path: in[0].Path, Suite: "trixie"}) // same file in a second suite, by explicit suite
	rep := publish(t, dir, PublishOptions{Origin: "Example Corp", Label: "criu-forge test"}, in...)
	if len(rep.Added) != 6 || !slices.Equal(rep.Suites, []string{"bookworm", "noble", "trixie"}) {
		t.Fatalf("report: %+v", rep)
	}
	got := checkRepo(t, dir)
	wantCounts := map[string]int{"bookworm/binary-amd64": 2, "bookworm/binary-arm64": 2, "noble/binary-amd64": 2, "trixie/binary-amd64": 1}
	for k, n := range wantCounts {
		if len(got[k]) != n {
			t.Errorf("%s has %d packages, want %d", k, len(got[k]), n)
		}
	}
	if len(got) != len(wantCounts) {
		t.Errorf("indexes %v, want %v", slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(wantCounts)))
	}
	if st := got["noble/binary-amd64"]; len(st) == 2 && st[1].get("Filename") != "pool/main/libc/libcriu2/libcriu2_4.2.1+forge3~ubu2404_amd64.deb" {
		t.Errorf("lib package pool path: %s", st[1].get("Filename"))
	}
	release, _ := os.ReadFile(filepath.Join(dir, "dists/bookworm/Release"))
	for _, want := range []string{"Origin: Example Corp\n", "Label: criu-forge test\n", "Suite: bookworm\n", "Codename: bookworm\n", "Architectures: amd64 arm64\n", "Components: main\n", "Acquire-By-Hash: yes\n", "MD5Sum:\n", "SHA256:\n", " main/binary-arm64/Packages.xz\n"} {
		if !bytes.Contains(release, []byte(want)) {
			t.Errorf("Release lacks %q:\n%s", want, release)
		}
	}
	compareWithAptFtparchive(t, dir, got)
	checkCompressed(t, dir)

	if _, err := exec.LookPath("dpkg-scanpackages"); err == nil {
		cmd := exec.Command("dpkg-scanpackages", "--multiversion", poolDir)
		cmd.Dir = dir
		ref, err := cmd.Output()
		if err != nil {
			t.Fatalf("dpkg-scanpackages: %v", err)
		}
		refBy := map[string]paragraph{}
		for _, st := range stanzas(t, ref) {
			refBy[st.get("Filename")] = st
		}
		compareStanzas(t, "dpkg-scanpackages", refBy, got)
	}

	asc, _ := os.ReadFile(filepath.Join(dir, keyringArmor))
	if !bytes.HasPrefix(asc, []byte("-----BEGIN PGP PUBLIC KEY BLOCK-----")) {
		t.Errorf("%s is not an armored public key", keyringArmor)
	}
}

func TestPublishKeepAndIncremental(t *testing.T) {
	debs := t.TempDir()
	dir := t.TempDir()
	mk := func(v string) string { return makeDeb(t, debs, testDeb{Name: "criu", Version: v}) }
	v1, v2, v10 := mk("4.2.1+forge2~deb12u1"), mk("4.2.1+forge9~deb12u1"), mk("4.2.1+forge10~deb12u1")
	other := makeDeb(t, debs, testDeb{Name: "crit", Version: "4.2.1+forge1~deb12u1", Arch: "all"})
	publish(t, dir, PublishOptions{Keep: 2}, paths(v1, other)...)
	firstIndexes := releaseSHA256(t, mustRead(t, filepath.Join(dir, "dists/bookworm/Release")))
	publish(t, dir, PublishOptions{Keep: 2}, paths(v10)...)
	// An apt that read the previous InRelease just before the switch still
	// finds the indexes it names, by hash.
	for _, e := range firstIndexes {
		p := filepath.Join(dir, "dists/bookworm", filepath.Dir(e.name), "by-hash/SHA256", e.sha)
		if sum, _ := fileSHA256(t, p); sum != e.sha {
			t.Errorf("previous generation's %s is not reachable by hash after the switch", e.name)
		}
	}
	rep := publish(t, dir, PublishOptions{Keep: 2}, paths(v2)...)
	// Debian order: forge10 > forge9 > forge2, so forge2 goes.
	if !slices.Equal(rep.Removed, []string{"bookworm/criu_4.2.1+forge2~deb12u1_amd64"}) || !slices.Equal(rep.Deleted, []string{"pool/main/c/criu/criu_4.2.1+forge2~deb12u1_amd64.deb"}) {
		t.Fatalf("report: %+v", rep)
	}
	got := checkRepo(t, dir) // also: no stale pool file
	var versions []string
	for _, st := range got["bookworm/binary-amd64"] {
		versions = append(versions, st.get("Package")+"="+st.get("Version"))
	}
	if want := []string{"crit=4.2.1+forge1~deb12u1", "criu=4.2.1+forge9~deb12u1", "criu=4.2.1+forge10~deb12u1"}; !slices.Equal(versions, want) {
		t.Errorf("published %v, want %v", versions, want)
	}
	gens, _ := os.ReadDir(filepath.Join(dir, genDir))
	if len(gens) != 3 { // current, the live generation, chunks
		t.Errorf("%s holds %d entries, want the live generation, its link and the chunk cache", genDir, len(gens))
	}

	// Re-publishing the same files is a no-op; an older version than the
	// kept ones is not published at all.
	before := treeSnapshot(t, dir)
	rep = publish(t, dir, PublishOptions{Keep: 2}, paths(v2, v10, v1)...)
	if len(rep.Added) != 0 || len(rep.Unchanged) != 2 || rep.Generation != 3 {
		t.Errorf("re-publish report: %+v", rep)
	}
	if after := treeSnapshot(t, dir); !maps.Equal(before, after) {
		t.Errorf("a no-op publish changed the repository")
	}
}

func TestBadInputChangesNothing(t *testing.T) {
	debs := t.TempDir()
	dir := t.TempDir()
	good := makeDeb(t, debs, testDeb{Name: "criu", Version: "4.2.1+forge3~deb12u1"})
	publish(t, dir, PublishOptions{}, paths(good)...)
	before := treeSnapshot(t, dir)

	other := makeDeb(t, t.TempDir(), testDeb{Name: "criu", Version: "4.2.1+forge3~deb12u1", Payload: "rebuilt"})
	notDeb := filepath.Join(debs, "notes.deb")
	os.WriteFile(notDeb, []byte("hello\n"), 0o644)
	truncated := filepath.Join(debs, "truncated.deb")
	data, _ := os.ReadFile(good)
	os.WriteFile(truncated, data[:200], 0o644)
	newOK := makeDeb(t, debs, testDeb{Name: "crit", Version: "4.2.1+forge3~deb12u1"})
	arm := makeDeb(t, debs, testDeb{Name: "crit", Version: "4.2.1+forge3~deb12u1", Arch: "arm64"})
	untagged := makeDeb(t, debs, testDeb{Name: "crit", Version: "4.2.1-1"})

	tests := []struct {
		name string
		opts PublishOptions
		in   []Input
		want string
	}{
		{"not a package", PublishOptions{}, paths(newOK, notDeb), "notes.deb: not a Debian package"},
		{"truncated package", PublishOptions{}, paths(truncated), "truncated.deb"},
		{"missing file", PublishOptions{}, paths(filepath.Join(debs, "nope.deb")), "nope.deb"},
		{"same version, other content", PublishOptions{}, paths(newOK, other), "already published with other content"},
		{"architecture not in the repository", PublishOptions{Architectures: []string{"amd64"}}, paths(newOK, arm), "architecture arm64 is not one of"},
		{"no distro tag", PublishOptions{}, paths(untagged), "name the suite explicitly"},
		{"bad suite name", PublishOptions{}, []Input{{Path: newOK, Suite: "../etc"}}, "not a suite name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Dir, tt.opts.Packages, tt.opts.Signer = dir, tt.in, newSigner(t)
			_, err := Publish(context.Background(), tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
			if after := treeSnapshot(t, dir); !maps.Equal(before, after) {
				t.Errorf("bad input changed the repository")
			}
		})
	}
	t.Run("no key", func(t *testing.T) {
		_, err := Publish(context.Background(), PublishOptions{Dir: dir, Packages: paths(newOK)})
		if err == nil || !strings.Contains(err.Error(), "no signing key") {
			t.Fatalf("got %v", err)
		}
		if after := treeSnapshot(t, dir); !maps.Equal(before, after) {
			t.Errorf("a publish without key changed the repository")
		}
	})
	t.Run("foreign dists", func(t *testing.T) {
		foreign := t.TempDir()
		os.MkdirAll(filepath.Join(foreign, "dists", "stable"), 0o755)
		_, err := Publish(context.Background(), PublishOptions{Dir: foreign, Packages: paths(newOK), Signer: newSigner(t)})
		if err == nil || !strings.Contains(err.Error(), "not made by criu-forge") {
			t.Fatalf("got %v", err)
		}
	})
}

func TestConcurrentPublishesKeepBoth(t *testing.T) {
	debs := t.TempDir()
	dir := t.TempDir()
	publish(t, dir, PublishOptions{}, paths(makeDeb(t, debs, testDeb{Name: "base", Version: "1~deb12u1"}))...)
	const n = 4
	var in []string
	for i := range n {
		in = append(in, makeDeb(t, debs, testDeb{Name: "pkg" + string(rune('a'+i)), Version: "1~deb12u1"}))
	}
	var wg sync.WaitGroup
	for _, p := range in {
		wg.Add(1)
		go func() {
			defer wg.Done()
			publish(t, dir, PublishOptions{}, paths(p)...)
		}()
	}
	wg.Wait()
	got := checkRepo(t, dir)
	if len(got["bookworm/binary-amd64"]) != n+1 {
		t.Fatalf("after %d concurrent publishes, %d packages are published, want %d", n, len(got["bookworm/binary-amd64"]), n+1)
	}
}

func TestServe(t *testing.T) {
	dir := t.TempDir()
	publish(t, dir, PublishOptions{}, paths(makeDeb(t, t.TempDir(), testDeb{Name: "criu", Version: "1~deb12u1"}))...)
	var log bytes.Buffer
	var mu sync.Mutex
	srv := httptest.NewServer(Handler(dir, lockedWriter{&mu, &log}))
	defer srv.Close()
	tests := []struct {
		path string
		code int
	}{
		{"/dists/bookworm/InRelease", 200},
		{"/" + KeyringName, 200},
		{"/pool/main/c/criu/criu_1~deb12u1_amd64.deb", 200},
		{"/.gen/current/state.json", 404},
		{"/.lock", 404},
		{"/dists/../.gen/current/state.json", 404},
		{"/%2e%2e/%2e%2e/etc/passwd", 404},
		{"/dists/nope/InRelease", 404},
	}
	for _, tt := range tests {
		resp, err := http.Get(srv.URL + tt.path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.code {
			t.Errorf("GET %s: %d, want %d", tt.path, resp.StatusCode, tt.code)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(log.String(), "GET /dists/bookworm/InRelease 200") {
		t.Errorf("request log:\n%s", log.String())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func TestServeStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- Serve(ctx, t.TempDir(), "127.0.0.1:0", nil) }()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not stop")
	}
	_ = testutil.HeavyEnv
}

// TestChunkedIndexes publishes enough packages for many compression chunks,
// then adds one: apt, gzip and xz must read every compressed index as the
// plain one, and the unchanged chunks must come from the cache.
func TestChunkedIndexes(t *testing.T) {
	debs := t.TempDir()
	dir := t.TempDir()
	var in []string
	for i := range 150 {
		in = append(in, makeDeb(t, debs, testDeb{Name: "pkg" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + string(rune('a'+i/26)), Version: "1~deb12u1"}))
	}
	publish(t, dir, PublishOptions{}, paths(in...)...)
	checkCompressed(t, dir)
	before, _ := loadState(dir)
	publish(t, dir, PublishOptions{}, paths(makeDeb(t, debs, testDeb{Name: "pkgnew", Version: "1~deb12u1"}))...)
	checkCompressed(t, dir)
	checkRepo(t, dir)
	after, _ := loadState(dir)
	old := map[string]bool{}
	for _, c := range before.Suites["bookworm"].Chunks {
		old[c] = true
	}
	reused := 0
	for _, c := range after.Suites["bookworm"].Chunks {
		if old[c] {
			reused++
		}
	}
	if n := len(after.Suites["bookworm"].Chunks); n < 4 || reused < n-2 {
		t.Errorf("%d of %d compressed chunks reused after adding one package, want all but the changed one (gz and xz)", reused, n)
	}
}

func publishErr(t testing.TB, dir string, files ...string) (*Report, error) {
	t.Helper()
	return Publish(context.Background(), PublishOptions{Dir: dir, Packages: paths(files...), Signer: newSigner(t)})
}

func mustRead(t testing.TB, p string) []byte {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
