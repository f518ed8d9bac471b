package debsrc

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/criu-forge/criu-forge/internal/testutil"
)

// TestFetchRealArchive fetches real criu orig tarballs through the
// machine's own apt configuration and Debian's archive keyring, and checks
// them against the fixtures' SHA256SUMS. The archive here serves only some
// pool files: trixie's .dsc answers 404 while its orig answers, which is
// what this package is for.
func TestFetchRealArchive(t *testing.T) {
	testutil.RequireHeavy(t)
	testutil.RequireTool(t, "apt-get", "apt")
	if _, err := os.Stat(DebianKeyring); err != nil {
		t.Skipf("%s missing: install the Debian package debian-archive-keyring", DebianKeyring)
	}
	sums, err := os.ReadFile(filepath.Join(testutil.SharedDir(t), "fixtures", "criu", "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	fixtureSHA := func(name string) string {
		for _, line := range strings.Split(string(sums), "\n") {
			if f := strings.Fields(line); len(f) == 2 && f[1] == name {
				return f[0]
			}
		}
		t.Fatalf("SHA256SUMS has no %s", name)
		return ""
	}

	tests := []struct {
		suite, version, name string
		want                 string // sha256; "" = whatever the chain verifies
		mayBeMissing         bool   // the pool file is known to 404 here
	}{
		{"sid", "4.2.1-1", "criu_4.2.1.orig.tar.xz", fixtureSHA("criu_4.2.1.orig.tar.xz"), false},
		{"trixie", "4.1.1-1", "criu_4.1.1.orig.tar.xz", fixtureSHA("criu_4.1.1.orig.tar.xz"), false},
		{"bookworm", "3.17.1-2+deb12u2", "criu_3.17.1.orig.tar.xz", "", true},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var sidMirror string
	for _, tt := range tests {
		t.Run(tt.suite, func(t *testing.T) {
			req := Request{Package: "criu", Version: tt.version, Suite: tt.suite, CacheDir: t.TempDir()}
			res, err := Fetch(ctx, req)
			if tt.mayBeMissing && errors.Is(err, ErrPoolFileMissing) {
				t.Logf("pool file missing on this archive, as expected here: %v", err)
				return
			}
			if err != nil {
				t.Fatalf("Fetch: %v", err)
			}
			data, err := os.ReadFile(res.Path)
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(data)
			got := hex.EncodeToString(sum[:])
			if got != res.SHA256 || (tt.want != "" && got != tt.want) {
				t.Fatalf("tarball sha256 %s, result says %s, fixture %s", got, res.SHA256, tt.want)
			}
			if res.Name != tt.name || !strings.HasSuffix(res.URL, "/pool/main/c/criu/"+tt.name) {
				t.Errorf("result %+v", res)
			}
			t.Logf("fetched %s (%d bytes)", res.Name, res.Size)
			if tt.suite == "sid" {
				sidMirror = res.Mirror
			}

			req.Offline = true
			if _, err := Fetch(ctx, req); err != nil {
				t.Fatalf("Offline after a fetch: %v", err)
			}
		})
	}

	// Named explicitly, the mirror is held to Valid-Until whatever apt's
	// setting: this machine's archive may be a stale snapshot.
	if sidMirror == "" {
		return
	}
	strict := Request{Package: "criu", Version: "4.2.1-1", Suite: "sid", Mirror: sidMirror, CacheDir: t.TempDir()}
	if res, err := Fetch(ctx, strict); err == nil {
		if res.SHA256 != fixtureSHA("criu_4.2.1.orig.tar.xz") {
			t.Fatalf("explicit mirror: sha256 %s", res.SHA256)
		}
	} else if errors.Is(err, ErrExpired) {
		t.Logf("explicit mirror refused as expected for a stale archive: %v", err)
	} else {
		t.Fatalf("explicit mirror: %v", err)
	}
}
