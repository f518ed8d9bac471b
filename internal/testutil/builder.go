package testutil

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/criu-forge/criu-forge/internal/fsutil"
	"github.com/criu-forge/criu-forge/internal/sandbox"
)

// TestCacheDir returns the cache directory that heavy tests share across
// runs and packages, so a builder made by mmdebstrap once (30-60 s) is
// reused: $CRIU_FORGE_TEST_CACHE, else $XDG_CACHE_HOME/criu-forge-test,
// else /var/tmp/criu-forge-test.
func TestCacheDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("CRIU_FORGE_TEST_CACHE")
	if dir == "" {
		if x := os.Getenv("XDG_CACHE_HOME"); x != "" {
			dir = filepath.Join(x, "criu-forge-test")
		} else {
			dir = filepath.Join("/var/tmp", "criu-forge-test")
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("test cache dir: %v", err)
	}
	return dir
}

// BookwormBuilder returns a Debian 12 builder with packages (plus ccache)
// for runner r, made with mmdebstrap from the machine's apt sources on
// first use and cached in TestCacheDir. It skips t when mmdebstrap or root
// is missing.
func BookwormBuilder(t testing.TB, r sandbox.Runner, packages ...string) *sandbox.Builder {
	t.Helper()
	RequireRoot(t)
	RequireTool(t, "mmdebstrap", "mmdebstrap")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	b, err := sandbox.Prepare(ctx, r, sandbox.BuilderSpec{
		Target:   BookwormTarget(),
		Packages: packages,
		CacheDir: TestCacheDir(t),
		Log:      testLog{t},
	})
	if err != nil {
		t.Fatalf("prepare bookworm builder: %v", err)
	}
	return b
}

// BookwormTarget is the debian-12 target the heavy tests build for.
func BookwormTarget() sandbox.Target {
	return sandbox.Target{Name: "debian-12", Distro: "debian", Release: "bookworm", Family: "deb"}
}

type testLog struct{ t testing.TB }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Logf("%s", p)
	return len(p), nil
}

// StartDockerd starts a private docker daemon the way SANDBOX-NOTES
// describes (own data root, exec root and socket; the Debian package does
// not start one), points DOCKER_HOST at it for the rest of t and stops it
// at the end. Its data root lives in TestCacheDir so imported builder
// images survive between runs; a lock keeps two test processes from
// sharing it at once. It skips t when dockerd is missing or does not come
// up, saying why.
func StartDockerd(t *testing.T) {
	t.Helper()
	RequireRoot(t)
	dockerd := RequireTool(t, "dockerd", "docker.io")
	RequireTool(t, "docker", "docker.io")
	base := filepath.Join(TestCacheDir(t), "docker")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	lock, err := fsutil.Acquire(ctx, filepath.Join(base, "daemon.lock"))
	if err != nil {
		t.Fatalf("dockerd: %v", err)
	}
	t.Cleanup(func() { lock.Release() })
	run := t.TempDir() // short-lived: socket, pid file, exec root
	sock := filepath.Join(run, "docker.sock")
	logPath := filepath.Join(run, "dockerd.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(dockerd,
		"--data-root", filepath.Join(base, "data"),
		"--exec-root", filepath.Join(run, "exec"),
		"--pidfile", filepath.Join(run, "docker.pid"),
		"-H", "unix://"+sock)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Skipf("dockerd does not start: %v", err)
	}
	stopped := make(chan struct{})
	go func() { cmd.Wait(); logFile.Close(); close(stopped) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-stopped:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-stopped
		}
	})
	t.Setenv("DOCKER_HOST", "unix://"+sock)
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := exec.Command("docker", "version").CombinedOutput()
		if err == nil {
			return
		}
		select {
		case <-stopped:
			log, _ := os.ReadFile(logPath)
			t.Skipf("dockerd exited at start: %s", tail(log, 2000))
		default:
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logPath)
			t.Skipf("dockerd did not answer within 30 s: %v: %s\n%s", err, out, tail(log, 2000))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return fmt.Sprintf("%s", b)
}

// CRIUDebianDeps are the Debian build dependencies of CRIU 4.x (from
// CRIU-FACTS.md) plus what pycriu/crit's pip install needs. Tests that need
// any bookworm builder use this set, so one cached builder serves them all.
var CRIUDebianDeps = []string{
	"gcc", "make", "pkg-config", "libprotobuf-c-dev", "protobuf-c-compiler",
	"protobuf-compiler", "libprotobuf-dev", "python3-protobuf", "libnl-3-dev",
	"libnet1-dev", "libcap-dev", "libbsd-dev", "libgnutls28-dev",
	"libnftables-dev", "uuid-dev", "python3-pip", "python3-setuptools",
	"python3-wheel",
}
