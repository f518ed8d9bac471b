package repo

import (
	"bufio"
	"context"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/criu-forge/criu-forge/internal/signing"
)

// Environment of the publisher subprocess the crash test kills.
const (
	crashDirEnv  = "CRIU_FORGE_TEST_PUBLISH_DIR"
	crashKeyEnv  = "CRIU_FORGE_TEST_PUBLISH_KEY"
	crashDebsEnv = "CRIU_FORGE_TEST_PUBLISH_DEBS"
	crashKeep    = 3
)

// TestPublisherProcess is not a test: it is the publisher the crash test
// starts (the test binary re-executed) and kills with SIGKILL.
func TestPublisherProcess(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("helper process for TestKill9DuringPublish")
	}
	s, err := signing.Load(signing.KeyOptions{Path: os.Getenv(crashKeyEnv)})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println("ready") // the parent times the kill from here
	_, err = Publish(context.Background(), PublishOptions{Dir: dir, Packages: paths(strings.Split(os.Getenv(crashDebsEnv), ",")...), Signer: s, Keep: crashKeep})
	if err != nil {
		t.Fatal(err)
	}
}

// startPublisher runs a publisher process and returns once it is about to
// publish.
func startPublisher(t *testing.T, dir, key string, debs []string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestPublisherProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashKeyEnv+"="+key, crashDebsEnv+"="+strings.Join(debs, ","))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "ready\n" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("publisher process did not start: %q %v", line, err)
	}
	go func() { bufio.NewReader(out).WriteTo(discard{}) }()
	return cmd
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

func TestKill9DuringPublish(t *testing.T) {
	if testing.Short() {
		t.Skip("kills 20 publisher processes")
	}
	debs := t.TempDir()
	dir := t.TempDir()
	newSigner(t)
	key := filepath.Join(t.TempDir(), "key.asc")
	os.WriteFile(key, testKey.ArmoredPrivate, 0o600)

	var all, rpms []string
	for i := range 20 {
		all = append(all, makeDeb(t, debs, testDeb{Name: fmt.Sprintf("crash%d", i%4), Version: fmt.Sprintf("1.%d~deb12u1", i)}))
		if i%3 == 0 { // the yum side takes part in the same generations
			rpms = append(rpms, makeRPM(t, debs, testDeb{Name: "crashrpm", Version: fmt.Sprintf("1.%d", i), Arch: "amd64"}, "1.el9"))
		}
	}
	inputs := func(n int) []string {
		return append(slices.Clone(all[:n]), rpms[:(n+2)/3]...)
	}
	// A repository with some history, and the time one publish takes.
	first := startPublisher(t, dir, key, inputs(2))
	start := time.Now()
	if err := first.Wait(); err != nil {
		t.Fatalf("publisher: %v", err)
	}
	took := time.Since(start)
	t.Logf("one publish (and exit) takes %v: killing at random points in that span", took)

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	killed := 0
	for i := 2; i < len(all); i++ {
		cmd := startPublisher(t, dir, key, inputs(i+1))        // re-publishing the older ones is a no-op for them
		time.Sleep(time.Duration(rng.Int64N(2 * int64(took)))) // later publishes have more to do
		cmd.Process.Signal(syscall.SIGKILL)
		if err := cmd.Wait(); err != nil {
			if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
				t.Fatalf("publisher failed: %v", err)
			}
			killed++
		}
		got := checkRepoFiles(t, dir, true)
		compareWithAptFtparchive(t, dir, got)
	}
	t.Logf("%d of %d publishes were killed", killed, len(all)-2)

	// A clean re-run completes the repository and leaves nothing behind.
	if err := startPublisher(t, dir, key, inputs(len(all))).Wait(); err != nil {
		t.Fatalf("publisher after the crashes: %v", err)
	}
	got := checkRepo(t, dir)
	compareWithAptFtparchive(t, dir, got)
	var have []string
	for _, st := range got["bookworm/binary-amd64"] {
		have = append(have, st.get("Package")+"="+st.get("Version"))
	}
	var want []string
	for n := range 4 {
		for _, v := range []int{8, 12, 16} { // the 3 newest versions of each package
			want = append(want, fmt.Sprintf("crash%d=1.%d~deb12u1", n, v+n))
		}
	}
	slices.Sort(have)
	slices.Sort(want)
	if !slices.Equal(have, want) {
		t.Errorf("after the re-run: %v, want %v", have, want)
	}
	// --keep holds for the yum side too: the 3 newest of crashrpm's 7.
	var haveRPMs []string
	st, _ := loadState(dir)
	for _, r := range st.Rpms {
		haveRPMs = append(haveRPMs, r.evr())
	}
	slices.Sort(haveRPMs)
	if wantRPMs := []string{"0:1.12-1.el9", "0:1.15-1.el9", "0:1.18-1.el9"}; !slices.Equal(haveRPMs, wantRPMs) {
		t.Errorf("after the re-run, the rpms published are %v, want %v (of %d built)", haveRPMs, wantRPMs, len(rpms))
	}
	gens, _ := os.ReadDir(filepath.Join(dir, genDir))
	if len(gens) != 3 { // current, the live generation, chunks
		t.Errorf("%s holds %d entries after a clean run, want 3", genDir, len(gens))
	}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.Contains(d.Name(), ".tmp") {
			t.Errorf("leftover %s", p)
		}
		return nil
	})
}

// TestConcurrentPublisherProcesses: two publisher processes started at the
// same moment, each with its own package, are serialized by the lock and
// both packages end up published (aptly #1125).
func TestConcurrentPublisherProcesses(t *testing.T) {
	debs := t.TempDir()
	dir := t.TempDir()
	newSigner(t)
	key := filepath.Join(t.TempDir(), "key.asc")
	os.WriteFile(key, testKey.ArmoredPrivate, 0o600)
	a := makeDeb(t, debs, testDeb{Name: "first", Version: "1~deb12u1"})
	b := makeDeb(t, debs, testDeb{Name: "second", Version: "1~deb12u1"})
	p1 := startPublisher(t, dir, key, []string{a})
	p2 := startPublisher(t, dir, key, []string{b})
	if err := p1.Wait(); err != nil {
		t.Fatalf("first publisher: %v", err)
	}
	if err := p2.Wait(); err != nil {
		t.Fatalf("second publisher: %v", err)
	}
	got := checkRepo(t, dir)
	var names []string
	for _, st := range got["bookworm/binary-amd64"] {
		names = append(names, st.get("Package"))
	}
	if !slices.Equal(names, []string{"first", "second"}) {
		t.Fatalf("published %v, want both packages", names)
	}
}
