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

// TestFetchRealArchive fetches criu 4.2.1-1 from sid through the machine's
// own apt configuration and Debian's archive keyring, and checks the
// tarball against the fixture's SHA256SUMS.
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
	want := ""
	for _, line := range strings.Split(string(sums), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[1] == "criu_4.2.1.orig.tar.xz" {
			want = f[0]
		}
	}
	if want == "" {
		t.Fatal("SHA256SUMS has no criu_4.2.1.orig.tar.xz")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	req := Request{Package: "criu", Version: "4.2.1-1", Suite: "sid", CacheDir: t.TempDir()}
	res, err := Fetch(ctx, req)
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	data, err := os.ReadFile(res.Path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	if got := hex.EncodeToString(sum[:]); got != want || res.SHA256 != want {
		t.Fatalf("tarball sha256 %s (result says %s), SHA256SUMS says %s", got, res.SHA256, want)
	}
	if res.Name != "criu_4.2.1.orig.tar.xz" || !strings.HasSuffix(res.URL, "/pool/main/c/criu/criu_4.2.1.orig.tar.xz") {
		t.Errorf("result %+v", res)
	}
	t.Logf("fetched %s (%d bytes) from %s", res.Name, res.Size, res.URL)

	req.Offline = true
	if _, err := Fetch(ctx, req); err != nil {
		t.Fatalf("Offline after a fetch: %v", err)
	}

	// Named explicitly, the mirror is held to Valid-Until whatever apt's
	// setting: this machine's archive may be a stale snapshot.
	strict := Request{Package: "criu", Version: "4.2.1-1", Suite: "sid", Mirror: res.Mirror, CacheDir: t.TempDir()}
	if res2, err := Fetch(ctx, strict); err == nil {
		if res2.SHA256 != want {
			t.Fatalf("explicit mirror: sha256 %s, want %s", res2.SHA256, want)
		}
	} else if errors.Is(err, ErrExpired) {
		t.Logf("explicit mirror refused as expected for a stale archive: %v", err)
	} else {
		t.Fatalf("explicit mirror: %v", err)
	}
}
