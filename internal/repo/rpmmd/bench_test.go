package rpmmd

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/criu-forge/criu-forge/internal/repo/rpmmd/internal/rpmtest"
	"github.com/criu-forge/criu-forge/internal/signing"
)

// benchCorpus returns a root holding n corpus packages (hard links into a
// cache kept across runs, since building them takes a while) and one more
// package outside it, to add.
func benchCorpus(b testing.TB, n int) (root, extra string) {
	b.Helper()
	cache := filepath.Join(os.TempDir(), "criu-forge-bench-yum")
	paths, err := rpmtest.Corpus(filepath.Join(cache, "corpus"), 0, n, 4)
	if err != nil {
		b.Fatal(err)
	}
	extras, err := rpmtest.Corpus(filepath.Join(cache, "extra"), n, 1, 1)
	if err != nil {
		b.Fatal(err)
	}
	root = b.TempDir()
	if err := os.Mkdir(filepath.Join(root, "Packages"), 0o755); err != nil {
		b.Fatal(err)
	}
	for _, p := range paths {
		if err := os.Link(p, filepath.Join(root, "Packages", filepath.Base(p))); err != nil {
			b.Fatal(err)
		}
	}
	return root, extras[0]
}

func benchSigner(b testing.TB) func([]byte) ([]byte, error) {
	b.Helper()
	key, err := rpmtest.SigningKey(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	s, err := signing.Load(signing.KeyOptions{Path: key})
	if err != nil {
		b.Fatal(err)
	}
	return func(data []byte) ([]byte, error) {
		var sig bytes.Buffer
		err := s.DetachSign(&sig, data, true)
		return sig.Bytes(), err
	}
}

// BenchmarkIndex1000 indexes a repository of 1,000 small packages from
// scratch (no state): read every header, write signed metadata.
// scripts/bench-yum compares this with createrepo_c.
func BenchmarkIndex1000(b *testing.B) {
	root, _ := benchCorpus(b, 1000)
	sign := benchSigner(b)
	for b.Loop() {
		if err := os.RemoveAll(filepath.Join(root, "repodata")); err != nil {
			b.Fatal(err)
		}
		r, err := Open(root)
		if err != nil {
			b.Fatal(err)
		}
		if err := r.Write(root, sign); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAddOneTo1000 adds one package to a signed repository of 1,000:
// open (state), read the new package, add, write signed metadata. Goal:
// under 0.1 s per operation.
func BenchmarkAddOneTo1000(b *testing.B) {
	root, extra := benchCorpus(b, 1000)
	sign := benchSigner(b)
	r, err := Open(root)
	if err != nil {
		b.Fatal(err)
	}
	if err := r.Write(root, sign); err != nil {
		b.Fatal(err)
	}
	href := "Packages/" + filepath.Base(extra)
	for b.Loop() {
		b.StopTimer()
		if err := os.Link(extra, filepath.Join(root, filepath.FromSlash(href))); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		r, err := Open(root)
		if err != nil {
			b.Fatal(err)
		}
		p, err := ReadPackage(filepath.Join(root, filepath.FromSlash(href)))
		if err != nil {
			b.Fatal(err)
		}
		if err := r.Add(p, href); err != nil {
			b.Fatal(err)
		}
		if err := r.Write(root, sign); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		r.Remove(href)
		if err := os.Remove(filepath.Join(root, filepath.FromSlash(href))); err != nil {
			b.Fatal(err)
		}
		if err := r.Write(root, sign); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

// BenchmarkOpen1000 opens an indexed repository of 1,000 packages: read
// and check the state, the first step of every publish.
func BenchmarkOpen1000(b *testing.B) {
	root, _ := benchCorpus(b, 1000)
	writeRepo(b, root)
	for b.Loop() {
		r, err := Open(root)
		if err != nil {
			b.Fatal(err)
		}
		if len(r.Packages()) != 1000 {
			b.Fatal("lost packages")
		}
	}
}
