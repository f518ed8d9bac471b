package debsrc

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/criu-forge/criu-forge/internal/testutil"
)

func TestFetchVerifiesChain(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, a *fakeArchive, req *Request)
	}{
		{"armored keyring, by-hash index", nil},
		{"binary keyring", func(t *testing.T, a *fakeArchive, req *Request) {
			req.Keyring = dearmor(t, a.keyring)
		}},
		{"no by-hash", func(t *testing.T, a *fakeArchive, req *Request) {
			a.release.byHash = false
			for name := range a.files {
				if strings.Contains(name, "/by-hash/") {
					delete(a.files, name)
				}
			}
			a.sign()
		}},
		{"only Sources.gz published", func(t *testing.T, a *fakeArchive, req *Request) {
			delete(a.files, sourcesXZPath)
			for name := range a.files {
				if strings.Contains(name, "/by-hash/") {
					delete(a.files, name)
				}
			}
			a.sign()
		}},
		{"Sources.xz listed but missing falls back to .gz", func(t *testing.T, a *fakeArchive, req *Request) {
			a.release.byHash = false
			a.sign()
			delete(a.files, sourcesXZPath)
		}},
		{"two signatures, the first by an expired key", func(t *testing.T, a *fakeArchive, req *Request) {
			retired, keyring := expiredSigner(t, a.signers[0])
			a.signers, req.Keyring = []*openpgp.Entity{retired, a.signers[0]}, keyring
			a.sign()
		}},
		{"two signatures, the first by an unknown key", func(t *testing.T, a *fakeArchive, req *Request) {
			intruder, _ := newSigner(t, "intruder")
			a.signers = []*openpgp.Entity{intruder, a.signers[0]}
			a.sign()
		}},
		{"no Valid-Until", func(t *testing.T, a *fakeArchive, req *Request) {
			a.release.validUntil = time.Time{}
			a.sign()
		}},
		{"suite asked by name, not codename", func(t *testing.T, a *fakeArchive, req *Request) {
			for name, data := range a.files {
				if strings.HasPrefix(name, "dists/sid/") {
					a.files["dists/unstable/"+strings.TrimPrefix(name, "dists/sid/")] = data
				}
			}
			req.Suite = "unstable"
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newFakeArchive(t)
			cache := t.TempDir()
			req := a.request(cache)
			if tt.setup != nil {
				a.mu.Lock()
				tt.setup(t, a, &req)
				a.mu.Unlock()
			}
			res, err := Fetch(context.Background(), req)
			if err != nil {
				t.Fatalf("Fetch: %v", err)
			}
			want := Result{Path: filepath.Join(cache, "tarballs", criuOrigSHA256), SHA256: criuOrigSHA256, Size: 1038700,
				Name: criuOrigName, URL: a.mirror() + criuOrigPath, Mirror: a.mirror()}
			if *res != want {
				t.Errorf("result\n got %+v\nwant %+v", *res, want)
			}
			if err := checkFile(res.Path, res.Size, res.SHA256); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestFetchRefuses(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(t *testing.T, a *fakeArchive, req *Request)
		kind    error
		message string
	}{
		{"tampered tarball, same size", func(t *testing.T, a *fakeArchive, req *Request) {
			bad := bytes.Clone(a.files[criuOrigPath])
			bad[len(bad)/2] ^= 1
			a.files[criuOrigPath] = bad
		}, ErrHashMismatch, "sha256"},
		{"tampered tarball, longer", func(t *testing.T, a *fakeArchive, req *Request) {
			a.files[criuOrigPath] = append(bytes.Clone(a.files[criuOrigPath]), "extra"...)
		}, ErrHashMismatch, "bytes"},
		{"tampered Sources", func(t *testing.T, a *fakeArchive, req *Request) {
			signed := a.files[sourcesXZPath]
			a.setSources(strings.Replace(criuParagraph, criuOrigSHA256, strings.Repeat("0", 64), 1))
			for name, data := range a.files {
				if bytes.Equal(data, signed) {
					a.files[name] = a.files[sourcesXZPath]
				}
			}
		}, ErrHashMismatch, "Sources"},
		{"InRelease text changed after signing", func(t *testing.T, a *fakeArchive, req *Request) {
			a.files["dists/sid/InRelease"] = bytes.Replace(a.files["dists/sid/InRelease"], []byte("Components: main"), []byte("Components: evil"), 1)
		}, ErrBadSignature, "InRelease"},
		{"signed by an unknown key", func(t *testing.T, a *fakeArchive, req *Request) {
			intruder, _ := newSigner(t, "intruder")
			a.signers = []*openpgp.Entity{intruder}
			a.sign()
		}, ErrBadSignature, "unknown entity"},
		{"signed only by an expired key", func(t *testing.T, a *fakeArchive, req *Request) {
			retired, keyring := expiredSigner(t)
			a.signers, req.Keyring = []*openpgp.Entity{retired}, keyring
			a.sign()
		}, ErrBadSignature, "expired"},
		{"unsigned text before the signed block", func(t *testing.T, a *fakeArchive, req *Request) {
			a.files["dists/sid/InRelease"] = append([]byte("Origin: Debian\n\n"), a.files["dists/sid/InRelease"]...)
		}, ErrBadSignature, "not a clear-signed file"},
		{"plain Release, no signature", func(t *testing.T, a *fakeArchive, req *Request) {
			a.files["dists/sid/InRelease"] = []byte(a.releaseText())
		}, ErrBadSignature, "not a clear-signed file"},
		{"another suite's Release served as sid", func(t *testing.T, a *fakeArchive, req *Request) {
			a.release.suite, a.release.codename = "oldstable", "bookworm"
			a.sign()
		}, ErrBadSignature, `codename "bookworm", not sid`},
		{"expired Valid-Until", func(t *testing.T, a *fakeArchive, req *Request) {
			a.release.validUntil = time.Now().Add(-48 * time.Hour)
			a.sign()
		}, ErrExpired, "was valid until"},
		{"version not in Sources", func(t *testing.T, a *fakeArchive, req *Request) {
			req.Version = "4.2.1-9"
		}, ErrVersionNotFound, "which list criu 4.2.1-1; pin one of those"},
		{"package not in Sources", func(t *testing.T, a *fakeArchive, req *Request) {
			req.Package = "criu-forge"
		}, ErrVersionNotFound, "no source package criu-forge"},
		{"orig missing from the pool", func(t *testing.T, a *fakeArchive, req *Request) {
			delete(a.files, criuOrigPath)
		}, ErrPoolFileMissing, "pool file " + criuOrigPath + " is missing on this mirror"},
		{"suite not on the mirror", func(t *testing.T, a *fakeArchive, req *Request) {
			req.Suite = "forky"
		}, ErrSuiteNotFound, "suite forky not found"},
		{"no Sources index answers", func(t *testing.T, a *fakeArchive, req *Request) {
			for name := range a.files {
				if strings.Contains(name, "/source/") {
					delete(a.files, name)
				}
			}
		}, nil, "no Sources index of sid/main answers"},
		{"native version", func(t *testing.T, a *fakeArchive, req *Request) {
			req.Version = "4.2.1"
		}, errInvalidRequest, "native version"},
		{"mirror not http", func(t *testing.T, a *fakeArchive, req *Request) {
			req.Mirror = "file:///srv/mirror"
		}, errInvalidRequest, "not an http(s) URL"},
		{"suite climbing out of the cache", func(t *testing.T, a *fakeArchive, req *Request) {
			req.Suite = "../../etc"
		}, errInvalidRequest, "suite"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newFakeArchive(t)
			cache := t.TempDir()
			req := a.request(cache)
			a.mu.Lock()
			tt.setup(t, a, &req)
			a.mu.Unlock()
			res, err := Fetch(context.Background(), req)
			if err == nil {
				t.Fatalf("Fetch succeeded: %+v", res)
			}
			t.Log(err)
			if tt.kind != nil && !errors.Is(err, tt.kind) {
				t.Errorf("error %q is not %v", err, tt.kind)
			}
			if !strings.Contains(err.Error(), tt.message) {
				t.Errorf("error %q does not say %q", err, tt.message)
			}
			for _, f := range cacheEntries(t, cache) {
				if !strings.HasSuffix(f, ".lock") {
					t.Errorf("refused fetch left %s in the cache", f)
				}
			}
		})
	}
}

func TestFetchUsesCache(t *testing.T) {
	a := newFakeArchive(t)
	cache := t.TempDir()
	req := a.request(cache)
	ctx := context.Background()

	first, err := Fetch(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if a.count("dists/sid/InRelease") != 1 || a.count(criuOrigPath) != 1 {
		t.Fatalf("first fetch requests: %v", a.requests)
	}

	before := a.total()
	second, err := Fetch(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if a.total() != before {
		t.Errorf("second fetch went to the network: %v", a.requests)
	}
	if *second != *first {
		t.Errorf("second fetch %+v, first %+v", *second, *first)
	}

	a.server.Close() // Offline must not need the network at all
	offline := req
	offline.Offline = true
	third, err := Fetch(ctx, offline)
	if err != nil {
		t.Fatalf("Offline: %v", err)
	}
	if *third != *first {
		t.Errorf("offline %+v, first %+v", *third, *first)
	}

	data, err := os.ReadFile(filepath.Join(cache, "debsrc", "sid", "criu_4.2.1-1.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(data, []byte(`"sha256": "`+criuOrigSHA256+`"`)) || !bytes.Contains(data, []byte(`"verified_at"`)) {
		t.Errorf("record does not say what was verified:\n%s", data)
	}
}

func TestFetchOfflineEmptyCache(t *testing.T) {
	cache := t.TempDir()
	_, err := Fetch(context.Background(), Request{Package: "criu", Version: "4.2.1-1", Suite: "sid", CacheDir: cache, Offline: true})
	want := "debian-source criu 4.2.1-1 (sid) is not in the cache " + cache + "; run once with network access"
	if err == nil || err.Error() != want || !errors.Is(err, ErrNotCached) {
		t.Fatalf("error %v, want %q", err, want)
	}
}

func TestFetchDamagedCache(t *testing.T) {
	a := newFakeArchive(t)
	cache := t.TempDir()
	req := a.request(cache)
	ctx := context.Background()
	res, err := Fetch(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(res.Path, []byte("rotten"), 0o644); err != nil {
		t.Fatal(err)
	}

	offline := req
	offline.Offline = true
	if _, err := Fetch(ctx, offline); !errors.Is(err, ErrNotCached) || !strings.Contains(err.Error(), "cached tarball") {
		t.Fatalf("Offline on a damaged tarball: %v", err)
	}

	again, err := Fetch(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if a.count(criuOrigPath) != 2 {
		t.Errorf("damaged tarball was not fetched again: %d downloads", a.count(criuOrigPath))
	}
	if err := checkFile(again.Path, again.Size, again.SHA256); err != nil {
		t.Error(err)
	}
}

// A tarball already in the cache (from another source) is verified by the
// chain and reused, without downloading it.
func TestFetchReusesCachedTarball(t *testing.T) {
	a := newFakeArchive(t)
	cache := t.TempDir()
	dest := filepath.Join(cache, "tarballs", criuOrigSHA256)
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dest, a.files[criuOrigPath], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Fetch(context.Background(), a.request(cache)); err != nil {
		t.Fatal(err)
	}
	if n := a.count(criuOrigPath); n != 0 {
		t.Errorf("orig downloaded %d times though the cache held it", n)
	}
	if a.count("dists/sid/InRelease") != 1 {
		t.Errorf("the chain was not checked: %v", a.requests)
	}
}

// Two processes (here goroutines, each taking the file lock) fetching the
// same version download it once.
func TestFetchConcurrent(t *testing.T) {
	a := newFakeArchive(t)
	cache := t.TempDir()
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = Fetch(context.Background(), a.request(cache))
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := a.count(criuOrigPath); n != 1 {
		t.Errorf("orig downloaded %d times", n)
	}
}

// fakeApt stands in for the machine's apt-get and apt-config.
func fakeApt(t *testing.T, indextargets string, checkValidUntil bool) {
	t.Helper()
	saved := aptCommand
	t.Cleanup(func() { aptCommand = saved })
	aptCommand = func(ctx context.Context, name string, args ...string) ([]byte, error) {
		switch name {
		case "apt-get":
			return []byte(indextargets), nil
		case "apt-config":
			if checkValidUntil {
				return nil, nil
			}
			return []byte("V='false'\n"), nil
		}
		return nil, exec.ErrNotFound
	}
}

// indexTarget is one record of `apt-get indextargets`, trimmed.
func indexTarget(repo, release, suite string) string {
	return "MetaKey: main/binary-amd64/Packages\nURI: " + repo + "dists/" + release + "/main/binary-amd64/Packages\n" +
		"Codename: " + release + "\nSuite: " + suite + "\nBase-URI: " + repo + "dists/" + release + "/\n" +
		"Repo-URI: " + repo + "\nRelease: " + release + "\nTarget-Of: deb\n\n"
}

func TestFetchMirrorFromApt(t *testing.T) {
	a := newFakeArchive(t)
	security := a.server.URL + "/debian-security/"
	fakeApt(t, indexTarget(security, "bookworm-security", "oldstable-security")+
		indexTarget(a.mirror(), "bookworm", "oldstable")+indexTarget(a.mirror(), "bookworm-updates", "oldstable-updates"), true)
	req := a.request(t.TempDir())
	req.Mirror = ""
	res, err := Fetch(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if res.Mirror != a.mirror() {
		t.Errorf("mirror %s, want %s", res.Mirror, a.mirror())
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for name := range a.requests {
		if strings.HasPrefix(name, "/debian-security/") {
			t.Errorf("asked the security archive for sid: %s", name)
		}
	}
}

// With the mirror taken from apt, apt's Acquire::Check-Valid-Until rules.
func TestFetchValidUntilFollowsApt(t *testing.T) {
	for _, check := range []bool{true, false} {
		a := newFakeArchive(t)
		a.release.validUntil = time.Now().Add(-time.Hour)
		a.sign()
		fakeApt(t, indexTarget(a.mirror(), "bookworm", "oldstable"), check)
		req := a.request(t.TempDir())
		req.Mirror = ""
		_, err := Fetch(context.Background(), req)
		if check && !errors.Is(err, ErrExpired) {
			t.Errorf("apt checks Valid-Until: error %v, want expired", err)
		}
		if !check && err != nil {
			t.Errorf("apt ignores Valid-Until: %v", err)
		}
	}
}

func TestFetchNoMirrorInApt(t *testing.T) {
	fakeApt(t, indexTarget("cdrom://[Debian]/", "bookworm", "oldstable"), true)
	_, err := Fetch(context.Background(), Request{Package: "criu", Version: "4.2.1-1", Suite: "sid", CacheDir: t.TempDir()})
	if !errors.Is(err, ErrNoMirror) || !strings.Contains(err.Error(), "mirror: in the recipe") {
		t.Fatalf("error %v", err)
	}
}

// The fake archive's InRelease is one the real gpgv accepts, so the
// signature tests exercise what Debian's archive serves.
func TestFakeInReleaseMatchesGpgv(t *testing.T) {
	gpgv := testutil.RequireTool(t, "gpgv", "gpgv")
	a := newFakeArchive(t)
	in := filepath.Join(t.TempDir(), "InRelease")
	if err := os.WriteFile(in, a.files["dists/sid/InRelease"], 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(gpgv, "--keyring", dearmor(t, a.keyring), in).CombinedOutput(); err != nil {
		t.Fatalf("gpgv rejects the fake InRelease: %v\n%s", err, out)
	}
}

func TestKeyringFor(t *testing.T) {
	a := newFakeArchive(t)
	debian := a.files["dists/sid/InRelease"]
	a.release.origin = "Ubuntu"
	a.sign()
	ubuntu := a.files["dists/sid/InRelease"]
	tests := []struct {
		requested string
		inRelease []byte
		want      string
	}{
		{"", debian, DebianKeyring},
		{"", ubuntu, UbuntuKeyring},
		{"", []byte("garbage"), DebianKeyring},
		{"/my/keyring.gpg", ubuntu, "/my/keyring.gpg"},
	}
	for _, tt := range tests {
		if got := keyringFor(tt.requested, tt.inRelease); got != tt.want {
			t.Errorf("keyringFor(%q, ...) = %s, want %s", tt.requested, got, tt.want)
		}
	}
}
