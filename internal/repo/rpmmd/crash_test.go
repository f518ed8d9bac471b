package rpmmd

import (
	"crypto/sha256"
	"encoding/hex"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// crashRootEnv names the repository a helper process rewrites in a loop
// until it is killed.
const crashRootEnv = "RPMMD_CRASH_ROOT"

// TestHelperWriteLoop is not a test: run by TestKilledWriteLeavesValidRepo
// in a child process, it rewrites the metadata of the repository forever,
// alternating between two package sets.
func TestHelperWriteLoop(t *testing.T) {
	root := os.Getenv(crashRootEnv)
	if root == "" {
		t.Skip("helper process for TestKilledWriteLeavesValidRepo")
	}
	r := openComplete(t, root)
	all := r.Packages()
	for i := int64(1); ; i++ {
		if i%2 == 0 {
			r.Remove(all[0].Href)
		} else if err := r.Add(all[0], all[0].Href); err != nil {
			t.Fatal(err)
		}
		r.Timestamp = i
		if err := r.Write(root, func(b []byte) ([]byte, error) { return []byte("sig " + strconv.Itoa(len(b))), nil }); err != nil {
			t.Fatal(err)
		}
	}
}

// TestKilledWriteLeavesValidRepo kills (SIGKILL) a process in the middle of
// writing metadata in place, many times at random moments, and checks after
// each kill that repomd.xml names files that exist with the checksums it
// states, and that the next Open and Write work.
func TestKilledWriteLeavesValidRepo(t *testing.T) {
	root := t.TempDir()
	buildSamples(t, root, sampleSpecs())
	writeRepo(t, root)
	for kill := range 20 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperWriteLoop$")
		cmd.Env = append(os.Environ(), crashRootEnv+"="+root)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(20+rand.IntN(80)) * time.Millisecond)
		cmd.Process.Kill()
		cmd.Wait()
		checkRepomd(t, root, kill)
	}
	r := openComplete(t, root)
	if err := r.Write(root, nil); err != nil {
		t.Fatal(err)
	}
	if n := len(r.Packages()); n != 3 {
		t.Errorf("after the kills and a final write: %d packages, want 3", n)
	}
	checkRepomd(t, root, -1)
}

// openComplete opens the repository at root and adds the packages below
// Packages/ that it lacks (the helper may have been killed with one
// removed).
func openComplete(t *testing.T, root string) *Repo {
	t.Helper()
	r, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	paths, _ := filepath.Glob(filepath.Join(root, "Packages", "*.rpm"))
	for _, p := range paths {
		if err := r.Add(readPkg(t, p), "Packages/"+filepath.Base(p)); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

// checkRepomd verifies that every file repomd.xml names is there with the
// size and sha256 it states.
func checkRepomd(t *testing.T, root string, kill int) {
	t.Helper()
	_, repomd := repoFiles(t, root)
	for _, d := range repomd.Children {
		if d.Name != "data" {
			continue
		}
		var href, sum, size string
		for _, c := range d.Children {
			switch c.Name {
			case "location":
				href = c.Attrs["href"]
			case "checksum":
				sum = c.Text
			case "size":
				size = c.Text
			}
		}
		data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(href)))
		if err != nil {
			t.Fatalf("after kill %d: repomd.xml names %s: %v", kill, href, err)
		}
		got := sha256.Sum256(data)
		if hex.EncodeToString(got[:]) != sum || strconv.Itoa(len(data)) != size {
			t.Fatalf("after kill %d: %s does not match repomd.xml", kill, href)
		}
	}
}
