package testutil

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/criu-forge/criu-forge/internal/fsutil"
)

// HostCRIU returns the path of a criu binary built on the host from the
// fixture release tarball (version "4.1.1" or "4.2.1"), for tests that
// checkpoint real processes. The build (make criu, about 40 s) is cached in
// TestCacheDir under the tarball's sha256, so later runs reuse it. It skips
// t unless heavy tests were asked for, and when gcc or make is missing; a
// failing build (missing -dev packages) fails t with the build's output.
func HostCRIU(t testing.TB, version string) string {
	t.Helper()
	RequireHeavy(t)
	RequireTool(t, "gcc", "gcc")
	RequireTool(t, "make", "make")
	tarball := CRIUTarball(t, version)
	f, err := os.Open(tarball)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	_, err = io.Copy(h, f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(TestCacheDir(t), "criu-"+version+"-"+hex.EncodeToString(h.Sum(nil))[:16])
	bin := filepath.Join(dir, "criu")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	lock, err := fsutil.Acquire(ctx, filepath.Join(dir, "build.lock"))
	if err != nil {
		t.Fatalf("lock host criu build: %v", err)
	}
	defer lock.Release()
	if _, err := os.Stat(bin); err == nil {
		return bin // built by another test process while we waited
	}
	work := t.TempDir()
	Run(t, work, "tar", "-xf", tarball, "--strip-components=1")
	cmd := exec.CommandContext(ctx, "make", "-j2", "criu", "WERROR=0")
	cmd.Dir = work
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build criu %s on the host (needs the build deps of CRIU-FACTS.md, e.g. libprotobuf-c-dev libnl-3-dev libnet1-dev libcap-dev libbsd-dev libgnutls28-dev libnftables-dev uuid-dev protobuf-c-compiler): %v\n%s", version, err, tailBytes(out, 4000))
	}
	data, err := os.ReadFile(filepath.Join(work, "criu", "criu"))
	if err != nil {
		t.Fatal(err)
	}
	if err := fsutil.WriteFileAtomic(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	return bin
}

func tailBytes(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
