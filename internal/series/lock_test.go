package series

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/criu-forge/criu-forge/internal/testutil"
)

// FuzzParseLock: a lock comes from outside (a repository, a review); the
// parser must never panic, and what it accepts must write back the same way.
func FuzzParseLock(f *testing.F) {
	if data, err := os.ReadFile(filepath.Join(testutil.RepoRoot(f), "patches", "criu-pidfd", "series.lock")); err == nil {
		f.Add(data)
	}
	f.Add([]byte(`{"lockVersion":1,"recipe":"x","entries":[{"entry":"PR #1","kind":"pr","pr":1,"patches":[{"commit":"abc","subject":"s","sha256":"sha256:00"}]}]}`))
	f.Add([]byte(`{"lockVersion":2}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := parseLock(data, "series.lock")
		if err != nil {
			return
		}
		out, err := l.Marshal()
		if err != nil {
			t.Fatalf("accepted lock does not marshal: %v", err)
		}
		again, err := parseLock(out, "series.lock")
		if err != nil {
			t.Fatalf("a lock we wrote does not parse: %v", err)
		}
		out2, _ := again.Marshal()
		if !bytes.Equal(out, out2) {
			t.Fatalf("lock does not round-trip:\n%s\n%s", out, out2)
		}
	})
}
