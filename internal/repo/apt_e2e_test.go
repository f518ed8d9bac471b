package repo

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/criu-forge/criu-forge/internal/fsutil"
	"github.com/criu-forge/criu-forge/internal/testutil"
)

// archiveURI reads the Debian archive address for suite from the machine's
// own apt configuration.
func archiveURI(t *testing.T, suite string) string {
	t.Helper()
	out, err := exec.Command("apt-get", "indextargets", "--format", "$(REPO_URI) $(RELEASE) $(IDENTIFIER)").Output()
	if err != nil {
		t.Skipf("apt-get indextargets: %v", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[1] == suite && f[2] == "Packages" {
			return f[0]
		}
	}
	t.Skipf("the machine's apt sources name no %s archive", suite)
	return ""
}

// bookwormRoot returns a fresh minimal bookworm root directory, unpacked
// from a tarball that mmdebstrap makes once and the test cache keeps.
func bookwormRoot(t *testing.T) string {
	t.Helper()
	testutil.RequireTool(t, "mmdebstrap", "mmdebstrap")
	cacheDir := testutil.TestCacheDir(t)
	tarball := filepath.Join(cacheDir, "bookworm-minbase.tar")
	lock, err := fsutil.Acquire(context.Background(), tarball+".lock")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(tarball); err != nil {
		tmp := filepath.Join(cacheDir, fmt.Sprintf(".bookworm-minbase.%d.tar", os.Getpid()))
		t.Logf("making %s with mmdebstrap (once; about a minute)", tarball)
		cmd := exec.Command("mmdebstrap", "--variant=minbase", "bookworm", tmp, archiveURI(t, "bookworm"))
		cmd.Env = append(os.Environ(), "TMPDIR="+cacheDir)
		if out, err := cmd.CombinedOutput(); err != nil {
			os.Remove(tmp)
			lock.Release()
			t.Fatalf("mmdebstrap: %v\n%s", err, out)
		}
		if err := os.Rename(tmp, tarball); err != nil {
			t.Fatal(err)
		}
	}
	lock.Release()
	root := t.TempDir()
	testutil.Run(t, root, "tar", "-xf", tarball, "-C", root)
	return root
}

// TestAptGetInstallsFromPublishedRepository: real apt-get in a clean
// bookworm root reads the served repository with signed-by, verifies it,
// installs our package, and refuses a tampered index.
func TestAptGetInstallsFromPublishedRepository(t *testing.T) {
	testutil.RequireHeavy(t)
	testutil.RequireRoot(t)
	testutil.RequireTool(t, "bwrap", "bubblewrap")
	root := bookwormRoot(t)

	debs := t.TempDir()
	repo := t.TempDir()
	in := paths(
		makeDeb(t, debs, testDeb{Name: "criu", Version: "4.2.1+forge3~deb12u1", Depends: []string{"criu-forge-test-data"}}),
		makeDeb(t, debs, testDeb{Name: "criu-forge-test-data", Version: "4.2.1+forge3~deb12u1", Arch: "all"}),
		makeDeb(t, debs, testDeb{Name: "criu", Version: "4.2.1+forge3~ubu2404"}),
	)
	// Enough packages for several compressed chunks: apt must read the
	// joined Packages.xz whole.
	for i := range 120 {
		in = append(in, Input{Path: makeDeb(t, debs, testDeb{Name: fmt.Sprintf("filler%03d", i), Version: "1~deb12u1"})})
	}
	publish(t, repo, PublishOptions{}, in...)
	if st, _ := loadState(repo); len(st.Suites["bookworm"].Chunks) < 4 {
		t.Fatalf("only %d compressed chunks: the test needs several", len(st.Suites["bookworm"].Chunks))
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	var log lockedBuffer
	go func() { served <- ServeListener(ctx, repo, ln, &log) }()
	t.Cleanup(func() {
		cancel()
		<-served
		if t.Failed() {
			t.Logf("server log:\n%s", log.String())
		}
	})

	keyring := "/etc/apt/keyrings/" + KeyringName
	key, err := os.ReadFile(filepath.Join(repo, KeyringName))
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(root, "etc/apt/keyrings"), 0o755)
	os.WriteFile(filepath.Join(root, keyring), key, 0o644)
	// Only our repository: the test needs no archive once the root exists.
	os.Remove(filepath.Join(root, "etc/apt/sources.list"))
	os.RemoveAll(filepath.Join(root, "etc/apt/sources.list.d"))
	os.MkdirAll(filepath.Join(root, "etc/apt/sources.list.d"), 0o755)
	source := fmt.Sprintf("deb [signed-by=%s] http://%s bookworm main\n", keyring, ln.Addr())
	os.WriteFile(filepath.Join(root, "etc/apt/sources.list.d/criu-forge.list"), []byte(source), 0o644)

	out, err := testutil.InAptRoot(root, "apt-get", "update")
	if err != nil || strings.Contains(out, "W: ") || strings.Contains(out, "E: ") {
		t.Fatalf("apt-get update: %v\n%s", err, out)
	}
	out, err = testutil.InAptRoot(root, "apt-cache", "show", "filler119")
	if err != nil || !strings.Contains(out, "Package: filler119") {
		t.Fatalf("apt did not read the last chunk of Packages.xz: %v\n%s", err, out)
	}
	for _, e := range releaseSHA256(t, mustRead(t, filepath.Join(repo, "dists/bookworm/Release"))) {
		if e.name == "main/binary-amd64/Packages.xz" && !strings.Contains(log.String(), "/by-hash/SHA256/"+e.sha+" 200") {
			t.Fatalf("apt did not fetch Packages.xz by hash:\n%s", log.String())
		}
	}
	out, err = testutil.InAptRoot(root, "apt-get", "install", "-y", "--no-install-recommends", "criu")
	if err != nil {
		t.Fatalf("apt-get install criu: %v\n%s", err, out)
	}
	out, err = testutil.InAptRoot(root, "dpkg-query", "-W", "-f", "${Package} ${Version} ${Status}\n", "criu", "criu-forge-test-data")
	if err != nil || !strings.Contains(out, "criu 4.2.1+forge3~deb12u1 install ok installed") || !strings.Contains(out, "criu-forge-test-data 4.2.1+forge3~deb12u1 install ok installed") {
		t.Fatalf("installed packages: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(root, "usr/share/criu/payload")); err != nil {
		t.Fatalf("the package's file is not installed: %v", err)
	}
	if !strings.Contains(log.String(), "/dists/bookworm/InRelease 200") || !strings.Contains(log.String(), "/by-hash/SHA256/") {
		t.Errorf("apt did not fetch InRelease and indexes by hash:\n%s", log.String())
	}

	// Tamper with every copy of bookworm's amd64 index: apt must refuse.
	idx := filepath.Join(repo, "dists/bookworm/main/binary-amd64")
	evil := []byte("Package: criu\nVersion: 9.9\nArchitecture: amd64\nFilename: pool/evil.deb\nSize: 1\nSHA256: 00\nDescription: evil\n\n")
	tamper := func(p string, data []byte) {
		os.Remove(p) // generation files are hard links: replace, do not write through
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	gz, _ := gzipBytes(evil)
	xzData, _ := xzBytes(evil)
	tamper(filepath.Join(idx, "Packages"), evil)
	tamper(filepath.Join(idx, "Packages.gz"), gz)
	tamper(filepath.Join(idx, "Packages.xz"), xzData)
	hashed, _ := filepath.Glob(filepath.Join(idx, "by-hash/SHA256/*"))
	for _, p := range hashed {
		tamper(p, xzData)
	}
	os.RemoveAll(filepath.Join(root, "var/lib/apt/lists"))
	os.MkdirAll(filepath.Join(root, "var/lib/apt/lists/partial"), 0o755)
	out, err = testutil.InAptRoot(root, "apt-get", "update")
	if err == nil && !strings.Contains(out, "E: ") {
		t.Fatalf("apt-get update accepted a tampered Packages:\n%s", out)
	}
	if !strings.Contains(out, "Hash Sum mismatch") && !strings.Contains(out, "unexpected size") {
		t.Errorf("apt-get update failed, but not for the tampered index:\n%s", out)
	}

	// A tampered InRelease fails its signature.
	inrel := filepath.Join(repo, "dists/bookworm/InRelease")
	data, _ := os.ReadFile(inrel)
	tamper(inrel, []byte(strings.Replace(string(data), "Origin: criu-forge", "Origin: evil-forge", 1)))
	os.RemoveAll(filepath.Join(root, "var/lib/apt/lists"))
	os.MkdirAll(filepath.Join(root, "var/lib/apt/lists/partial"), 0o755)
	out, _ = testutil.InAptRoot(root, "apt-get", "update")
	if !strings.Contains(out, "signature") && !strings.Contains(out, "BADSIG") {
		t.Errorf("apt-get update did not refuse a tampered InRelease:\n%s", out)
	}
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}
